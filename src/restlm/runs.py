"""The run directory: resolved config, metrics, stage records for resume, checkpoints, a lock.

Every file is written atomically (temp file + rename), so a killed run never leaves a
half-written file; a second process on the same directory is refused.
"""
from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import math
import os
import resource
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from restlm.errors import DiskFullError, RunDirError

TMP_SUFFIX = ".tmp"  # every temp file and folder restlm writes is `.NAME.*.tmp`: resume sweeps them
ASIDE_SUFFIX = f".old{TMP_SUFFIX}"  # a folder being replaced, moved aside: put back by the sweep if it is alone
LOCK_FILE = ".lock"
INPUTS_FILE = "inputs.json"  # a fingerprint of every input the run reads


@contextmanager
def _disk_full_is_one_line(path: Path) -> Iterator[None]:
    """A full disk (or quota) while writing `path` becomes DiskFullError; other errors pass unchanged."""
    try:
        yield
    except OSError as error:
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFullError(f"{path}: no space left on the device; nothing half-written was kept") from None
        raise


def write_bytes_atomic(path: Path, data: bytes) -> Path:
    """Write `data` to `path` through a temp file in the same folder and a rename; returns `path`.

    A reader never sees a half-written file, and a failed write (a full disk) leaves no temp file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _disk_full_is_one_line(path):
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o644)  # mkstemp makes 0600; results are meant to be read by others
            os.replace(tmp, path)  # same folder, so one filesystem: the rename is atomic
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return path


def write_atomic(path: Path, text: str) -> Path:
    """Write UTF-8 `text` to `path` atomically (see write_bytes_atomic)."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def finite_json(value):
    """`value` with every NaN or infinite float replaced by None: JSON has no such numbers, and a
    bare `NaN` makes a file that strict readers (and the report) refuse."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(v) for v in value]
    return value


def write_json(path: Path, value) -> None:
    write_atomic(path, json.dumps(finite_json(value), indent=2, sort_keys=False, allow_nan=False) + "\n")


def write_jsonl(path: Path, rows) -> None:
    write_atomic(path, "".join(json.dumps(finite_json(row), allow_nan=False) + "\n" for row in rows))


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def replace_folder(path: Path, write: Callable[[Path], None]) -> None:
    """Write a folder by `write(tmp)` into a temp folder beside `path`, then put it in place of `path`.

    For checkpoints and saved models, where a newer copy replaces an older one: a failed write
    leaves the older folder whole and no temp folder. A user's `--out` is guarded by
    `staged_folder`, which never replaces anything.
    """
    path = Path(path)
    tmp, aside = path.with_name(f".{path.name}{TMP_SUFFIX}"), _aside(path)
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        with _disk_full_is_one_line(path):
            write(tmp)
            # the older folder moves aside before the new one takes its name: a kill between the two renames
            # leaves it there, and `sweep_temp_files` puts it back
            if path.exists():
                os.replace(path, aside)
            os.replace(tmp, path)
            shutil.rmtree(aside, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _aside(path: Path) -> Path:
    return path.with_name(f".{path.name}{ASIDE_SUFFIX}")


def sweep_temp_files(folder: Path) -> int:
    """Remove the temp files and folders a killed process left under `folder`; returns how many."""
    swept = 0
    for stale in sorted(Path(folder).rglob(f".*{TMP_SUFFIX}"), key=lambda p: len(p.parts), reverse=True):
        original = stale.with_name(stale.name[1 : -len(ASIDE_SUFFIX)]) if stale.name.endswith(ASIDE_SUFFIX) else None
        if original is not None and stale.is_dir() and not original.exists():
            os.replace(stale, original)  # killed between replace_folder's renames: the older folder is the one
        elif stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)
        swept += 1
    return swept


def refuse_unusable_output(path: Path) -> None:
    """RunDirError when `path` cannot take new output: a file, or a folder with anything in it."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise RunDirError(f"{path}: is a file, not a folder; choose another path")
    if path.is_dir() and any(entry.name != LOCK_FILE for entry in path.iterdir()):
        raise RunDirError(f"{path}: already exists and is not empty; choose another folder or remove it")


def fingerprint(rows) -> str:
    """A sha256 of JSON-able rows: equal when their content is equal."""
    return hashlib.sha256(json.dumps(rows, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


@contextmanager
def staged_folder(path: str | Path, is_main: bool = True) -> Iterator[Path]:
    """A new folder beside `path` to write into: renamed to `path` when the block ends, removed if it raises.

    So a command that fails or is interrupted leaves no half-written `path`. A `path` that exists
    and is not an empty folder is refused (RunDirError) before the block runs. Under several
    processes only the main one publishes: the others get a scratch folder that is thrown away.
    """
    path = Path(path)
    refuse_unusable_output(path)
    if not is_main:
        with tempfile.TemporaryDirectory(prefix="restlm-scratch-") as scratch:
            yield Path(scratch)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.partial-", suffix=TMP_SUFFIX, dir=path.parent))
    try:
        with _disk_full_is_one_line(path):
            yield staging
            os.chmod(staging, 0o755)  # mkdtemp makes it private; the result is an ordinary folder
            refuse_unusable_output(path)  # decided again at the end: another process may have written it meanwhile
            os.replace(staging, path)  # onto an empty folder too
    finally:
        shutil.rmtree(staging, ignore_errors=True)


class RunDir:
    """One run's folder. Only the main process writes; others read what it wrote."""

    def __init__(self, path: str | Path, is_main: bool = True):
        self.path = Path(path)
        self.is_main = is_main
        self._lock_handle = None
        self.state = {"stages": {}}
        self.tensorboard = False
        self._writer = None
        self.shown_metrics: tuple[str, ...] = ("dev_accuracy", "dev_f1")  # the task's, set by whoever runs it

    # ---- life cycle
    def holds_run(self) -> bool:
        """state.json, or config.json beside the lock (a run killed while being created)."""
        return (self.path / "state.json").exists() or (
            (self.path / "config.json").exists() and (self.path / LOCK_FILE).exists())

    def refuse_held_run(self) -> None:
        """Raise if this directory already holds a run: a new run never overwrites one."""
        if self.holds_run():
            raise RunDirError(f"{self.path}: already holds a run; resume it with `restlm run --resume {self.path}` "
                              "or pick another run.output_dir")

    def check_new(self) -> None:
        """Raise unless a new run may start here (no run, not a file, nothing else in it). Writes nothing."""
        self.refuse_held_run()
        if self.path.exists() and not self.path.is_dir():
            raise RunDirError(f"{self.path}: is a file, not a folder; pick another run.output_dir")
        if self.path.is_dir() and any(entry.name != LOCK_FILE for entry in self.path.iterdir()):
            raise RunDirError(f"{self.path}: is not empty and holds no restlm run; pick another run.output_dir "
                              "(a run never writes into a folder of other files)")

    def create(self, config: dict, inputs: dict | None = None) -> "RunDir":
        """Start a new run here: lock, decide under the lock, write config.json, inputs.json, state.json.

        Deciding under the lock is what makes it safe: a run another process created after our
        first look (`check_new`, before data and models loaded) is refused, never overwritten.
        `inputs`: {name: fingerprint} of the data the run reads, checked by `check_inputs` on resume.
        """
        if self.is_main:
            self.check_new()
            self.path.mkdir(parents=True, exist_ok=True)
            self.lock()
            try:
                self.check_new()
            except RunDirError:
                self.close()
                raise
            write_json(self.path / "config.json", config)
            if inputs is not None:
                write_json(self.path / INPUTS_FILE, inputs)
            write_json(self.path / "state.json", self.state)  # no stage yet: no metrics.jsonl
        return self

    def resume(self) -> dict:
        """Lock and load an existing run, sweeping the temp files a kill left; returns its resolved config."""
        if not (self.path / "config.json").exists():
            raise RunDirError(f"{self.path}: no run to resume here (config.json is missing)")
        if not self.holds_run():
            raise RunDirError(f"{self.path}: no run to resume here (a config.json but no state.json: not a run folder)")
        if self.is_main:
            self.lock()
            sweep_temp_files(self.path)
        state = self.path / "state.json"
        # no state.json: the run was killed while being created, before any stage finished
        try:
            self.state = json.loads(state.read_text()) if state.exists() else {"stages": {}}
            return json.loads((self.path / "config.json").read_text())
        except json.JSONDecodeError as error:
            raise RunDirError(f"{self.path}: unreadable run files ({error})") from None

    def check_inputs(self, inputs: dict) -> None:
        """Refuse to resume when an input the run read has changed since it started (naming it).

        A run created before fingerprints were recorded gets them now, from the inputs as they are.
        """
        file = self.path / INPUTS_FILE
        if not file.exists():
            if self.is_main:
                write_json(file, inputs)
            return
        recorded = json.loads(file.read_text())
        for name, entry in inputs.items():
            before = recorded.get(name)
            if before is not None and before["sha256"] != entry["sha256"]:
                raise RunDirError(f"{entry['source']}: input '{name}' changed since the run started "
                                  f"({before['rows']} rows then, {entry['rows']} now); restore it, or start a new run")
        if missing := sorted(set(recorded) - set(inputs)):
            raise RunDirError(f"{self.path}: the run read inputs {missing} that its config no longer reads")

    def close(self) -> None:
        """Release the lock (also released when the process exits)."""
        if self._lock_handle is not None:
            fcntl.flock(self._lock_handle, fcntl.LOCK_UN)
            self._lock_handle.close()
            self._lock_handle = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def update_config(self, config: dict) -> None:
        """Record a config change that keeps finished stages valid (more seeds)."""
        if self.is_main:
            write_json(self.path / "config.json", config)

    def lock(self) -> None:
        handle = open(self.path / ".lock", "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            handle.close()
            raise RunDirError(f"{self.path}: in use by {owner}; a run directory takes one process at a time") from None
        handle.truncate(0)
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        self._lock_handle = handle  # held until the process exits

    # ---- stages (the unit of resume)
    def stage(self, key: str) -> dict | None:
        return self.state["stages"].get(key)

    def complete(self, key: str, record: dict) -> None:
        """Record a finished stage and append its metrics line."""
        self.state["stages"][key] = record
        if self.is_main:
            print(_log_line(key, record, self.shown_metrics), flush=True)
            self._log_tensorboard(key, record)
            self._save_state()

    def _log_tensorboard(self, key: str, record: dict) -> None:
        if not self.tensorboard:
            return
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.path / "tensorboard"))
        group, _, step = key.rpartition("/")
        for name, value in record.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self._writer.add_scalar(f"{group or key}/{name}", value, len(self.state["stages"]))
        self._writer.flush()

    def forget(self, prefix: str) -> list[str]:
        """Drop the records of `prefix` and of every stage under it, with their checkpoints, Grow sets and saved
        online state, so that they run again; returns the keys dropped. People's ratings files stay."""
        from restlm import run_layout as layout

        keys = [key for key in self.state["stages"] if layout.is_under(key, prefix)]
        for key in keys:
            del self.state["stages"][key]
        self.remove_checkpoint(prefix)
        if self.is_main:
            for key in {prefix, *keys}:
                (self.path / layout.online_state(key)).unlink(missing_ok=True)
                (self.path / layout.grown_file(key)).unlink(missing_ok=True)
            if keys:
                self._save_state()
        return keys

    def _save_state(self) -> None:
        """state.json, and metrics.jsonl rewritten whole from it (never a half line or a lost stage)."""
        write_jsonl(self.path / "metrics.jsonl", ({"stage": k, **v} for k, v in self.state["stages"].items()))
        write_json(self.path / "state.json", self.state)

    # ---- files
    def checkpoint_dir(self, key: str) -> Path:
        return self.path / "checkpoints" / key

    def remove_checkpoint(self, key: str) -> None:
        if self.is_main:
            shutil.rmtree(self.checkpoint_dir(key), ignore_errors=True)

    def write_jsonl(self, path: Path, rows) -> None:
        """Write rows from the main process only (every process computes them)."""
        if self.is_main:
            write_jsonl(path, rows)

    def file(self, *parts: str) -> Path:
        path = self.path.joinpath(*parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path


class StageRunner:
    """Runs a stage once: a finished stage returns its record; an unfinished one is computed
    from the weights of the stage it starts `after` (loaded from its checkpoint if needed)."""

    def __init__(self, run: RunDir, policy, in_memory: str):
        self.run, self.policy = run, policy
        self.in_memory = in_memory  # the stage whose weights the policy holds now
        self.ran = False  # whether the last call computed its stage (False: replayed from the record)

    def __call__(self, key: str, compute, after: str, trains: bool) -> dict:
        done = self.run.stage(key)
        self.ran = done is None
        if done is not None:
            return done
        if after != self.in_memory:
            self.policy.load_weights(self.run.checkpoint_dir(after))
            self.in_memory = after
        record = compute(key)
        record["peak_memory_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # so far, this process
        if trains:
            self.policy.save(self.run.checkpoint_dir(key))
            record["checkpoint"] = key
            self.in_memory = key
        self.run.complete(key, record)
        self.policy.accelerator.wait_for_everyone()  # other processes read what the main one wrote
        return record

    def prune(self, prefix: str, keep: set[str]) -> None:
        """Delete the checkpoints under `prefix` other than `keep` (the best and the latest)."""
        folder = self.run.checkpoint_dir(prefix)
        if not self.run.is_main or not folder.exists():
            return
        keys = [str(p.parent.relative_to(self.run.path / "checkpoints")) for p in folder.rglob("config.json")]
        for key in keys:
            if key not in keep:
                self.run.remove_checkpoint(key)


_SHOWN = ("threshold", "kept", "lr", "train_loss", "train_examples_per_s", "reward_mean",
          "engine", "sampled_tokens_per_s", "eval_tokens_per_s", "wall_time_s")


def _log_line(key: str, record: dict, metrics: tuple[str, ...]) -> str:
    """One line per finished stage: its key, the task's metrics, and the stage's own numbers and speed."""
    parts = []
    for name in dict.fromkeys((*metrics, *_SHOWN)):
        value = record.get(name)
        if isinstance(value, float):
            parts.append(f"{name}={value:.4g}")
        elif value is not None:
            parts.append(f"{name}={value}")
    return f"[{key}] " + " ".join(parts)
