"""The one place that decides where data lives: the data root, and paths under it."""
from __future__ import annotations

import os
from pathlib import Path

from restlm.errors import ConfigError, DataError, RestlmError

ENV_VAR = "RESTLM_DATA"


def data_root(configured: str | None = None) -> Path:
    """Return the folder that relative data paths are read from.

    In order: `configured` (the config key `data.root`), the environment variable
    RESTLM_DATA, then a `shared/data` folder found by walking up from the current
    directory and from this package's source (so `../shared/data` beside a clone is found).
    Raises ConfigError or RestlmError, one line, when none of these gives a folder.
    """
    if configured:
        path = Path(configured).expanduser()
        if not path.is_dir():
            raise ConfigError("data.root", f"'{configured}' is not a folder")
        return path.resolve()
    from_env = os.environ.get(ENV_VAR)
    if from_env:
        path = Path(from_env).expanduser()
        if not path.is_dir():
            raise RestlmError(f"{ENV_VAR}='{from_env}' is not a folder")
        return path.resolve()
    found = find_shared_data(_search_starts())
    if found is None:
        raise RestlmError(
            f"no data folder found: set data.root in the config or the {ENV_VAR} environment variable"
        )
    return found


def find_shared_data(starts: list[Path]) -> Path | None:
    """Return the first `shared/data` folder in any start folder or its parents, else None."""
    for start in starts:
        for folder in (start, *start.parents):
            candidate = folder / "shared" / "data"
            if candidate.is_dir():
                return candidate.resolve()
    return None


def _search_starts() -> list[Path]:
    # cwd first, so a user's own checkout wins over the one the package was installed from
    return [Path.cwd().resolve(), Path(__file__).resolve().parent]


def resolve_data_path(path: str | Path, root: Path | None = None) -> Path:
    """Return `path` as an existing location: absolute paths are returned as they are;
    relative ones are looked up under `root`, then under the current directory.

    Raises DataError naming the places looked in when a relative path is in neither.
    """
    given = Path(path).expanduser()
    if given.is_absolute():
        return given
    bases = ([Path(root)] if root is not None else []) + [Path.cwd()]
    for base in bases:
        if (base / given).exists():
            return base / given
    looked = " and ".join(str(base) for base in bases)
    raise DataError(path, f"not found (looked under {looked})")
