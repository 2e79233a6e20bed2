"""The run directory: resolved config, metrics, stage records for resume, checkpoints, a lock.

Every file is written whole or not at all (restlm.atomic_files), so a killed run never leaves a
half-written file; a second process on the same directory is refused.
"""
from __future__ import annotations

import fcntl
import json
import os
import resource
import shutil
from pathlib import Path

from restlm.atomic_files import LOCK_FILE, sweep_temp_files, write_json, write_jsonl
from restlm.errors import RunDirError

INPUTS_FILE = "inputs.json"  # a fingerprint of every input the run reads


LOST_FILES = ("the run directory has lost files (a copy of config.json and state.json alone?): resume a whole copy "
              "of it, or start a new run")


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
            config = json.loads((self.path / "config.json").read_text())
        except json.JSONDecodeError as error:
            raise RunDirError(f"{self.path}: unreadable run files ({error})") from None
        self._check_written_files()
        return config

    def _check_written_files(self) -> None:
        """Refuse a run whose finished stages' files (`*_file`: grown sets, NLL records) are gone, as they are
        when only config.json and state.json were copied: one line, not a traceback when a replay reads them."""
        for key, record in self.state["stages"].items():
            for field, relative in record.items():
                if field.endswith("_file") and isinstance(relative, str) and not (self.path / relative).is_file():
                    raise RunDirError(f"{self.path / relative}: missing, though stage {key} that wrote it is "
                                      f"recorded; {LOST_FILES}")

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

    def saved_weights(self, key: str) -> Path:
        """The checkpoint folder of finished stage `key`, to load weights from; one line when it is gone."""
        folder = self.checkpoint_dir(key)
        if not (folder / "model.safetensors").is_file():
            raise RunDirError(f"{folder}: no checkpoint, though stage {key} is recorded; {LOST_FILES}")
        return folder

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
            self.policy.load_weights(self.run.saved_weights(after))
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
