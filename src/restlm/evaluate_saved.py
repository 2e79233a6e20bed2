"""`restlm evaluate`: score a saved policy (a run's best checkpoints, a checkpoint folder, or any
model name) on a task's own splits or on a file of your own, with the task's metrics.

  restlm evaluate runs/mrpc_minilm                           # each best checkpoint, the run's own config
  restlm evaluate runs/own_task --split my_test.jsonl        # the same, on your own test file
  restlm evaluate runs/x/checkpoints/seed0/sft --task configs/multi30k_smollm2.yaml
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from restlm.config import ExperimentConfig, load_config, recorded_config, validate
from restlm.errors import ConfigError, RunDirError


def policies_to_score(target: str, task_config: str | None) -> tuple[ExperimentConfig, list[dict]]:
    """(the config, [{"policy": name or folder, + what it is: seed, N, G, I}]) for `target`.

    A finished run directory gives its best checkpoint per (seed, N) and, without `task_config`,
    its own config; a folder with a config.json, or a model name, is one policy of `task_config`.
    """
    path = Path(target)
    if (path / "state.json").exists():
        results = path / "results.json"
        if not results.exists():
            raise RunDirError(f"{path}: the run has not finished (no results.json); finish it with "
                              f"`restlm run --resume {path}`, or name one of its checkpoints")
        best = json.loads(results.read_text()).get("best_checkpoints") or []
        if not best:
            raise RunDirError(f"{results}: lists no checkpoint to score")
        config = (load_config(task_config, []) if task_config
                  else recorded_config(json.loads((path / "config.json").read_text())))
        return config, [{"policy": b["checkpoint"], **{k: b[k] for k in ("seed", "N", "G", "I")}} for b in best]
    if task_config is None:
        raise ConfigError("--task", f"{target} is not a run directory: name the task's config file with --task")
    return load_config(task_config, []), [{"policy": target}]


def evaluate_saved(target: str, task_config: str | None = None, split: str | None = None) -> dict:
    """{"task", "split", "scores": [{"policy", ..., metrics}]}: each policy of `target` scored by the
    task's evaluate(), on the task's splits, or on `split` alone (its metrics lose their split prefix)."""
    from accelerate import Accelerator

    from restlm.tasks import build_task

    config, policies = policies_to_score(target, task_config)
    accelerator = Accelerator()
    scores = []
    for entry in policies:
        # the saved folder holds the trained (merged) weights: load it as a plain model
        model = dataclasses.replace(config.model, name=entry["policy"], lora_rank=None)
        cfg = dataclasses.replace(config, model=model)
        validate(cfg)
        task = build_task(cfg, accelerator)
        task.load_data()
        if split is not None:
            task.score_only(task.read_split(Path(split)))
        metrics = task.evaluate(task.new_policy(seed=0))
        if split is not None:
            metrics = {name.removeprefix("dev_").removeprefix("test_"): value for name, value in metrics.items()}
        scores.append({**entry, **metrics})
    return {"task": config.task, "split": split or "the task's own", "scores": scores}
