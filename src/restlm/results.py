"""Assemble results.json (the report's input) from the stage records of a run directory."""
from __future__ import annotations

from restlm import run_layout as layout
from restlm.atomic_files import read_jsonl
from restlm.config import ExperimentConfig, to_dict
from restlm.run_sections import sections_read
from restlm.runs import RunDir

# The reference experiment (ALBERT on MRPC dev), shown beside ours.
REFERENCE_MRPC = {
    "table1": {"pre-trained": 0.3161, "fine-tuned": 0.8588, "GPT-4 zero-shot": 0.7819},
    "table2": {
        "100": {"G0I0": 0.8382, "G1I1": 0.8333, "G1I2": 0.8627, "G1I3": 0.8455, "G2I1": 0.8284, "G2I2": 0.8480, "G2I3": 0.8774},
        "1000": {"G0I0": 0.8651, "G1I1": 0.8724, "G1I2": 0.8701, "G1I3": 0.8701},
    },
}


def _cells(config: ExperimentConfig, run: RunDir) -> list[dict]:
    """One row per (seed, N, G, I) that finished; wall time is cumulative from fine-tuning.

    A cell holds every metric its stage recorded, and the distinct-sample share of its Grow step.
    """
    cells = []
    for seed in range(config.run.seeds):
        sft = run.stage(layout.seed_stage(seed, "sft"))
        if sft is None:
            continue
        for size in config.rest.grow_sizes:
            prefix, elapsed = layout.trajectory(seed, size), sft["wall_time_s"]
            cells.append(_cell(seed, size, 0, 0, sft, elapsed))
            for g in range(1, config.rest.grow_steps + 1):
                grow = run.stage(layout.grow_stage(prefix, g))
                elapsed += grow["wall_time_s"] if grow else 0.0
                for i in range(1, config.rest.improve_steps + 1):
                    record = run.stage(layout.improve_stage(prefix, g, i))
                    if record is not None:
                        elapsed += record["wall_time_s"]
                        cell = _cell(seed, size, g, i, record, elapsed)
                        if grow:
                            cell.update(distinct_samples=grow.get("distinct_samples"), distinct_2=grow.get("distinct_2"),
                                        grow_sampled_tokens=grow.get("sampled_tokens"),
                                        grow_wall_time_s=grow["wall_time_s"])
                        cells.append(cell)
    return cells


# stage-record keys that are plumbing, not results
_NOT_METRICS = {"checkpoint", "train_nll_file", "grown_file", "wall_time_s", "completed_at", "peak_memory_mb"}


def _cell(seed, size, g, i, record, elapsed) -> dict:
    metrics = {k: v for k, v in record.items() if k not in _NOT_METRICS and (v is None or isinstance(v, (int, float)))}
    return {"seed": seed, "N": size, "G": g, "I": i, "threshold": None, "kept": None, "kept_grown": None,
            "kept_mean_reward": None, "lr": None, **metrics, "stage_wall_time_s": record["wall_time_s"],
            "wall_time_s": elapsed, "checkpoint": record.get("checkpoint")}


def _baselines(config: ExperimentConfig, run: RunDir, untrained_label: str) -> dict:
    """{row name: {metric: [value per seed]}}; classification rows also carry 'accuracy' and 'f1', and a row
    its stages' wall_time_s (per seed) where they recorded one."""
    rows = {}
    majority = run.stage(layout.MAJORITY)
    if majority:
        rows["majority class"] = {"accuracy": [majority["dev_accuracy"]], "f1": [majority["dev_f1"]]}
    untrained = [r for s in range(config.run.seeds) if (r := run.stage(layout.seed_stage(s, "untrained")))]
    if untrained:
        keys = [k for k, v in untrained[0].items() if k not in _NOT_METRICS and isinstance(v, (int, float))]
        rows[untrained_label] = {k: [r[k] for r in untrained if k in r] for k in keys}
        if times := [r["wall_time_s"] for r in untrained if "wall_time_s" in r]:  # older runs did not time it
            rows[untrained_label]["wall_time_s"] = times
        if "dev_accuracy" in rows[untrained_label]:
            rows[untrained_label].update(accuracy=rows[untrained_label]["dev_accuracy"], f1=rows[untrained_label]["dev_f1"])
    zero_shot = run.stage(layout.ZERO_SHOT)
    if zero_shot:
        # predicted_yes: a model that answers "No" to nearly every pair scores about the share of negatives
        row = rows[f"zero-shot LLM ({zero_shot['model']})"] = {
            "accuracy": [zero_shot["dev_accuracy"]], "f1": [zero_shot["dev_f1"]],
            "unparsed_fraction": zero_shot.get("unparsed_fraction"), "predicted_yes": zero_shot.get("predicted_yes")}
        if "wall_time_s" in zero_shot:
            row["wall_time_s"] = [zero_shot["wall_time_s"]]
    return rows


def _histograms(config: ExperimentConfig, run: RunDir) -> tuple[list[dict], list[dict]]:
    """Figure 2's training NLL at fine-tuned and end-of-Grow stages, and the Grow rewards (seed 0)."""
    nll, rewards = [], []
    sft = run.stage(layout.seed_stage(0, "sft"))
    for size in config.rest.grow_sizes:
        prefix = layout.trajectory(0, size)
        if sft and "train_nll_file" in sft:
            nll.append({"label": "fine-tuned", "N": size, "seed": 0, "dev_accuracy": sft.get("dev_accuracy"),
                        "nll": [r["nll"] for r in read_jsonl(run.path / sft["train_nll_file"])]})
        for g in range(1, config.rest.grow_steps + 1):
            last = run.stage(layout.improve_stage(prefix, g, config.rest.improve_steps))
            if last and "train_nll_file" in last:
                nll.append({"label": f"G{g}I{config.rest.improve_steps}", "N": size, "seed": 0, "dev_accuracy": last.get("dev_accuracy"),
                            "nll": [r["nll"] for r in read_jsonl(run.path / last["train_nll_file"])]})
            grow = run.stage(layout.grow_stage(prefix, g))
            if grow:
                thresholds = [run.stage(layout.improve_stage(prefix, g, i)) for i in range(1, config.rest.improve_steps + 1)]
                rewards.append({"N": size, "seed": 0, "G": g, "rewards": [r["reward"] for r in read_jsonl(run.path / grow["grown_file"])],
                                "thresholds": [t["threshold"] for t in thresholds if t]})
    return nll, rewards


def _best_checkpoints(cells: list[dict], run: RunDir, metric: str) -> list[dict]:
    """Per (seed, N): the step with the best `metric` (G0I0 included) and its checkpoint folder."""
    best = {}
    for cell in cells:
        key = (cell["seed"], cell["N"])
        if key not in best or cell[metric] > best[key][metric]:
            best[key] = cell
    return [{"seed": c["seed"], "N": c["N"], "G": c["G"], "I": c["I"], metric: c[metric],
             "checkpoint": str(run.checkpoint_dir(c["checkpoint"]))} for c in best.values() if c.get("checkpoint")]


def collect_results(config: ExperimentConfig, run: RunDir, task=None) -> dict:
    """The results dict of a run (schema: see restlm.report.write_report).

    `task` (a restlm.tasks.Task; default: the config's) names the selection metric, the metric
    columns and the reward-hacking guard pair of the report.
    """
    if task is None:
        from restlm.tasks import build_task

        task = build_task(config, None)
    nll, rewards = _histograms(config, run)
    data = task.data_name()
    metric = task.selection_metric
    guard = task.guard()
    results = {"title": f"ReST on {data} with {config.model.name}", "task": config.task, "data_name": data,
               "config": to_dict(config), "config_sections": sections_read(config), "seeds": list(range(config.run.seeds)),
               "primary_metric": metric, "metric_columns": [list(c) for c in task.metric_columns()],
               "guard": {"reward": guard[0], "heldout": guard[1]} if guard else None,
               "baselines": _baselines(config, run, task.untrained_label), "cells": (cells := _cells(config, run)),
               "best_checkpoints": _best_checkpoints(cells, run, metric),
               "histograms": nll, "reward_histograms": rewards}
    if config.task == "classification" and config.data.source != "file" and (config.data.path == "mrpc" or config.data.config == "mrpc"):
        results["reference"] = REFERENCE_MRPC
    return results
