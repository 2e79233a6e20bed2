"""Reusing finished method runs of another compare directory (`--carry DIR`): a method's final
record is taken when every setting it depends on is the same there (the task, the start policy,
the method's own config sections, the seed, the evaluation, PPO's budget). `--keep-records DIR`
writes such a directory as the run goes: its config.json and the final records, no weights, so a
lost run directory (a machine given back mid-run) loses no finished method run."""
from __future__ import annotations

import json
import os
from pathlib import Path

from restlm import run_layout as layout
from restlm.config.loading import as_recorded
from restlm.errors import RunDirError

TASK_SECTIONS = ("task", "data", "model", "train", "prompts", "translation", "sentiment", "arithmetic",
                 "generation")  # the task and its start policy


def signature(recorded: dict, method, seed: int) -> dict:
    """Every recorded setting a method run depends on."""
    experiment = as_recorded(recorded["experiment"])  # a run from before a key ran as RECORDED_BEFORE says
    values = {section: experiment.get(section) for section in TASK_SECTIONS}
    for dotted in method.sections:
        node = experiment
        for part in dotted.split("."):
            node = (node or {}).get(part)
        values[dotted] = node
    values["variant"] = (experiment.get("variants") or {}).get(method.name)  # a variant's own values
    values.update(seed=seed, eval_samples=recorded.get("eval_samples"))
    if method.online:
        values["budget"] = recorded.get("budget")
    return values


def read_records(folder: Path) -> tuple[dict, dict]:
    """A compare directory's (or a records folder's) config.json and its stage records; RunDirError naming the
    folder when it holds neither."""
    try:
        config = json.loads((folder / "config.json").read_text())
        stages = json.loads((folder / "state.json").read_text())["stages"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as error:
        raise RunDirError(f"{folder}: not a finished compare directory ({error})") from None
    if not isinstance(config, dict) or "experiment" not in config:
        raise RunDirError(f"{folder}: holds a `restlm run`, not a comparison")
    return config, stages


def matching_finals(stages: dict, theirs: dict, ours: dict, method_of, skip=()) -> dict:
    """The final method records in `stages`, written under config `theirs`, that hold under config `ours`: their
    method (`method_of(name)`, None when it has none) depends on no setting that differs, and is not in `skip`."""
    kept = {}
    for key, record in stages.items():
        seed, name = layout.final_parts(key) or (None, None)
        if name is None or name in skip:
            continue
        method = method_of(name)
        if method is not None and signature(theirs, method, seed) == signature(ours, method, seed):
            kept[key] = record
    return kept


def read_carried(settings) -> list[tuple[Path, dict, dict]]:
    """Each `--carry` folder with its config and stage records, read before the run directory is made so that a
    bad folder is refused with nothing written. The `--keep-records` folder, named with `--carry` too, may hold
    nothing yet (a first run)."""
    carried = []
    for folder in map(Path, settings.carry):
        if settings.keep_records and folder == Path(settings.keep_records) and not (folder / "state.json").exists():
            continue
        try:
            carried.append((folder, *read_records(folder)))
        except RunDirError as error:
            raise RunDirError(f"--carry {error}") from None
    return carried


def carry_records(run, settings, methods: dict, carried: list[tuple[Path, dict, dict]]) -> None:
    """Copy into `run` the final records of the `carried` folders' method runs whose signatures match (on every
    process: each must skip what was carried; only the main one writes)."""
    recorded = settings.recorded()
    for folder, other, stages in carried:
        for key, record in matching_finals(stages, other, recorded, methods.get, settings.rerun).items():
            if layout.final_parts(key)[0] < settings.seeds and run.stage(key) is None:
                run.complete(key, {**record, "carried_from": str(folder)})


def keep_records(run, settings) -> None:
    """With `settings.keep_records` (a folder), write its config.json (the run's) and its state.json holding the
    run's finished method records (`seedS/METHOD/final`, no weights): a directory `--carry` reads. A record
    already there stays when its method run's signature is the same under both configs (another run of this
    comparison wrote it), unless its method is being rerun; the run's own records win. Locked against another
    run writing the same folder."""
    import fcntl

    from restlm.atomic_files import write_json

    if not settings.keep_records or not run.is_main:
        return
    folder = Path(settings.keep_records)
    folder.mkdir(parents=True, exist_ok=True)
    config = json.loads((run.path / "config.json").read_text())
    finals = {key: _as_kept(record, folder) for key, record in run.state["stages"].items() if layout.final_parts(key)}
    handle = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            old, old_stages = read_records(folder)
        except RunDirError:
            old, old_stages = None, {}  # nothing there yet, or not records: written anew
        kept = matching_finals(old_stages, old, config, lambda name: _method_or_none(name, settings.config),
                               settings.rerun)
        if old != config:  # every moment on disk is a consistent pair: the kept records hold under both configs
            write_json(folder / "state.json", {"stages": dict(sorted(kept.items()))})
            write_json(folder / "config.json", config)
        write_json(folder / "state.json", {"stages": dict(sorted({**kept, **finals}.items()))})
    finally:
        os.close(handle)  # and the lock with it


def _method_or_none(name: str, config):
    """The method `name` as `config` defines it; None for a variant the comparison no longer has."""
    from restlm.errors import ConfigError
    from restlm.methods import build_method

    try:
        return build_method(name, config)
    except ConfigError:
        return None


def _as_kept(record: dict, folder: Path) -> dict:
    """A final record as `folder` keeps it: one carried from `folder` itself goes back as it came."""
    if record.get("carried_from") == str(folder):
        return {k: v for k, v in record.items() if k != "carried_from"}
    return record
