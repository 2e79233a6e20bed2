"""User-facing errors: one line, naming the file, line or key, and exit code 2."""


class RestlmError(Exception):
    """Bad input from the user (config, data, model). The CLI prints it as one line and exits 2."""

    exit_code = 2


class ConfigError(RestlmError):
    """A config key that is unknown, missing or of the wrong type."""

    def __init__(self, key: str, message: str):
        # a command-line flag is named as typed; a config key as a key
        super().__init__(f"{key}: {message}" if key.startswith("--") else f"config key '{key}': {message}")
        self.key = key
        self.message = message


class DataError(RestlmError):
    """A data file that cannot be read: names the file and, where known, the line."""

    def __init__(self, path, message: str, line: int | None = None):
        where = f"{path}:{line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {message}")
        self.path = str(path)
        self.line = line


class ModelLoadError(RestlmError):
    """A model name or path that cannot be loaded."""

    def __init__(self, name: str, message: str):
        super().__init__(f"model '{name}': {message}")
        self.name = name


class RunDirError(RestlmError):
    """A run directory that is locked, missing or inconsistent."""


class AwaitingRatings(RestlmError):
    """A run stopped after a Grow step for people to rate its samples; not a failure (exit code 3)."""

    exit_code = 3


class NonFiniteError(RestlmError):
    """A loss (or a reward) that is NaN or infinite: training stops there instead of saving garbage."""


class DiskFullError(RestlmError):
    """The disk filled up while writing: nothing was left half-written (exit code 1: not the input's fault)."""

    exit_code = 1
