"""Files written whole or not at all: a temp file (or folder) beside the target, then a rename, so a killed
process never leaves a half-written file; a full disk is one line (DiskFullError), never a traceback. Also the
JSON helpers every record uses (non-finite numbers written as null) and the sweep of temp files a kill left.
"""
from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from restlm.errors import DiskFullError, RunDirError

TMP_SUFFIX = ".tmp"  # every temp file and folder restlm writes is `.NAME.*.tmp`: resume sweeps them
ASIDE_SUFFIX = f".old{TMP_SUFFIX}"  # a folder being replaced, moved aside: put back by the sweep if it is alone
LOCK_FILE = ".lock"  # a run folder's lock: a folder holding only it counts as empty


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
