"""Reusing finished method runs of another compare directory (`--carry DIR`): a method's final
record is taken when every setting it depends on is the same there (the task, the start policy,
the method's own config sections, the seed, the evaluation, PPO's budget). `--keep-records DIR`
writes such a directory as the run goes: its config.json and the final records, no weights, so a
lost run directory (a machine given back mid-run) loses no finished method run."""
from __future__ import annotations

import json
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


def carry_records(run, settings, methods: dict) -> None:
    """Copy into `run` the final records of other directories' method runs whose signatures match."""
    if not run.is_main:
        return
    recorded = settings.recorded()
    for folder in map(Path, settings.carry):
        try:
            other = json.loads((folder / "config.json").read_text())
            stages = json.loads((folder / "state.json").read_text())["stages"]
        except (OSError, json.JSONDecodeError, KeyError) as error:
            raise RunDirError(f"--carry {folder}: not a finished compare directory ({error})") from None
        if "experiment" not in other:
            raise RunDirError(f"--carry {folder}: holds a `restlm run`, not a comparison")
        for seed in range(settings.seeds):
            for name, method in methods.items():
                if name in settings.rerun:  # asked to run again, not to be copied
                    continue
                key = layout.method_final(seed, name)
                if run.stage(key) is None and key in stages and \
                        signature(other, method, seed) == signature(recorded, method, seed):
                    run.complete(key, {**stages[key], "carried_from": str(folder)})


def keep_records(run, folder: str | Path) -> None:
    """Write `folder`/config.json (the run's) and `folder`/state.json holding the run's finished method records
    (`seedS/METHOD/final`, no weights): a directory `--carry` reads. Records already there under the same config
    stay (another run of the same comparison may have written them); under another config they are replaced."""
    from restlm.atomic_files import write_json

    if not run.is_main:
        return
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = json.loads((run.path / "config.json").read_text())
    finals = {key: record for key, record in run.state["stages"].items() if layout.is_method_final(key)}
    try:
        if _comparison(json.loads((folder / "config.json").read_text())) == _comparison(config):
            finals = {**json.loads((folder / "state.json").read_text())["stages"], **finals}
    except (OSError, json.JSONDecodeError, KeyError):
        pass  # nothing there yet, or not records: written anew
    write_json(folder / "config.json", config)
    write_json(folder / "state.json", {"stages": dict(sorted(finals.items()))})


def _comparison(config: dict) -> dict:
    """A compare directory's config.json without what two runs of one comparison may differ in (`run`: the
    output folder, the seeds)."""
    return {**config, "experiment": {k: v for k, v in config["experiment"].items() if k != "run"}}
