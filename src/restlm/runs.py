"""The run directory: resolved config, metrics, stage records for resume, checkpoints, a lock.

Every file is written atomically (temp file + rename), so a killed run never leaves a
half-written file; a second process on the same directory is refused.
"""
from __future__ import annotations

import fcntl
import json
import os
import resource
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from restlm.errors import RunDirError


def write_atomic(path: Path, text: str) -> None:
    """Write text to path through a temp file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def write_json(path: Path, value) -> None:
    write_atomic(path, json.dumps(value, indent=2, sort_keys=False) + "\n")


def write_jsonl(path: Path, rows) -> None:
    write_atomic(path, "".join(json.dumps(row) + "\n" for row in rows))


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


@contextmanager
def staged_folder(path: str | Path, is_main: bool = True) -> Iterator[Path]:
    """A new folder beside `path` to write into: renamed to `path` when the block ends, removed if it raises.

    So a command that fails or is interrupted leaves no half-written `path`. A `path` that exists
    and is not an empty folder is refused (RunDirError) before the block runs. Under several
    processes only the main one publishes: the others get a scratch folder that is thrown away.
    """
    path = Path(path)
    if path.exists() and not (path.is_dir() and not any(path.iterdir())):
        raise RunDirError(f"{path}: already exists; choose another folder or remove it")
    if not is_main:
        with tempfile.TemporaryDirectory(prefix="restlm-scratch-") as scratch:
            yield Path(scratch)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.partial-", dir=path.parent))
    try:
        yield staging
        os.chmod(staging, 0o755)  # mkdtemp makes it private; the result is an ordinary folder
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

    # ---- life cycle
    def holds_run(self) -> bool:
        return (self.path / "state.json").exists()

    def refuse_held_run(self, held_run: bool | None = None) -> None:
        """Raise if this directory already holds a run: a new run never overwrites one."""
        if self.holds_run() if held_run is None else held_run:
            raise RunDirError(f"{self.path}: already holds a run; resume it with `restlm run --resume {self.path}` or pick another run.output_dir")

    def create(self, config: dict, held_run: bool | None = None) -> "RunDir":
        """Start a new run here; an existing run is never overwritten.

        `held_run`: whether the directory held a run, when the caller looked before other processes could write.
        """
        self.refuse_held_run(held_run)
        if self.is_main:
            self.path.mkdir(parents=True, exist_ok=True)
            self.lock()
            write_json(self.path / "config.json", config)
            self._save_state()
        return self

    def resume(self) -> dict:
        """Lock and load an existing run; returns its resolved config."""
        if not (self.path / "config.json").exists():
            raise RunDirError(f"{self.path}: no run to resume here (config.json is missing)")
        if self.is_main:
            self.lock()
        state = self.path / "state.json"
        # no state.json: the run was killed while being created, before any stage finished
        try:
            self.state = json.loads(state.read_text()) if state.exists() else {"stages": {}}
            return json.loads((self.path / "config.json").read_text())
        except json.JSONDecodeError as error:
            raise RunDirError(f"{self.path}: unreadable run files ({error})") from None

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
            print(_log_line(key, record), flush=True)
            self._log_tensorboard(key, record)
            # rewritten whole from the state, so it never holds a half line or a lost stage
            write_jsonl(self.path / "metrics.jsonl", ({"stage": k, **v} for k, v in self.state["stages"].items()))
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

    def _save_state(self) -> None:
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


_SHOWN = ("dev_accuracy", "dev_f1", "threshold", "kept", "lr", "train_loss", "train_examples_per_s", "reward_mean", "wall_time_s")


def _log_line(key: str, record: dict) -> str:
    """One line per finished stage: its key, headline metrics and speed."""
    parts = []
    for name in _SHOWN:
        value = record.get(name)
        if isinstance(value, float):
            parts.append(f"{name}={value:.4g}")
        elif value is not None:
            parts.append(f"{name}={value}")
    return f"[{key}] " + " ".join(parts)
