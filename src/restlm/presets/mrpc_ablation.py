"""The MRPC ablation benchmark (benchmarks/mrpc_ablation.py): ReST variants from one fine-tuned checkpoint.

Each variant (a name and config overrides) runs one ReST trajectory from the G0I0 checkpoint of a
finished benchmark run's seed; its dev accuracy per step and the label mix of the rows each Improve
step kept are written to OUT.json and OUT.md after every variant.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from restlm import run_layout as layout
from restlm.config import ExperimentConfig, apply_overrides, from_dict
from restlm.experiment import Experiment
from restlm.rest import ReST
from restlm.rewards import build_reward
from restlm.runs import read_jsonl, write_atomic, write_json
from restlm.thresholds import improve_masks


def kept_positive_shares(run_dir: Path, grown_file: str, config: ExperimentConfig) -> list[float]:
    """Share of label 1 among the rows each Improve step kept, recomputed from the grown file."""
    rows = read_jsonl(run_dir / grown_file)
    rest = config.rest
    reward = build_reward(rest.reward, rest.normalise_reward)
    masks = improve_masks(rest.threshold, [r["reward"] for r in rows], [r["index"] for r in rows], rest.improve_steps,
                          reward.higher_is_better, rest.thresholds, rest.threshold_decay,
                          strata=[str(r["output"]) for r in rows] if rest.threshold_per_output else None)
    outputs = np.array([r["output"] for r in rows])
    return [float((outputs[mask] == 1).mean()) for mask, _ in masks]


def run_variant(base: dict, name: str, overrides: list[str], source: Path, seed: int, out_dir: Path) -> dict:
    """One ReST trajectory of `base` with `overrides` from `source`'s fine-tuned checkpoint of `seed`; its record."""
    values = apply_overrides(json.loads(json.dumps(base)), overrides)
    config = from_dict(ExperimentConfig, values)
    experiment = Experiment(config, out_dir / name)
    experiment.load_data()
    policy = experiment.new_policy(seed)
    policy.load_weights(source / layout.checkpoint_dir(layout.seed_stage(seed, "sft")))
    rest = ReST(policy=policy, reward=config.rest.reward, train_data=experiment.train, evaluate=experiment.evaluate,
                config=config.rest, train_config=config.train, run_dir=str(out_dir / name))
    size = config.rest.grow_sizes[0]
    records = rest.run(grow_size=size, seed=seed)
    start = rest.run_dir.stage("start/eval")
    steps = []
    for r in records:
        grow = rest.run_dir.stage(layout.grow_stage(layout.STANDALONE, r["G"]))
        shares = kept_positive_shares(rest.run_dir.path, grow["grown_file"], config)
        steps.append({"G": r["G"], "I": r["I"], "dev_accuracy": r["dev_accuracy"], "dev_f1": r["dev_f1"],
                      "threshold": r["threshold"], "kept": r["kept"], "kept_positive_share": shares[r["I"] - 1]})
    return {"variant": name, "overrides": overrides, "seed": seed, "N": size, "g0i0_dev_accuracy": start["dev_accuracy"], "steps": steps}


def markdown(results: list[dict]) -> str:
    """The variants' records (the `variants` of mrpc_minilm_ablations.json) -> its .md."""
    lines = ["# ReST ablations on MRPC (MiniLM)", "",
             "Each variant starts from the same fine-tuned checkpoint (G0I0) of the benchmark run.", "",
             "| variant | overrides | seed | N | G0I0 | step | dev acc | Δ vs G0I0 | F1 | kept | kept share of label 1 |",
             "|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|"]
    for v in results:
        for s in v["steps"]:
            lines.append(f"| {v['variant']} | `{' '.join(v['overrides'])}` | {v['seed']} | {v['N']} | {v['g0i0_dev_accuracy']:.4f} "
                         f"| G{s['G']}I{s['I']} | {s['dev_accuracy']:.4f} | {s['dev_accuracy'] - v['g0i0_dev_accuracy']:+.4f} "
                         f"| {s['dev_f1']:.4f} | {s['kept']} | {s['kept_positive_share']:.3f} |")
    return "\n".join(lines) + "\n"


def main(args: argparse.Namespace) -> None:
    """Run each --variant NAME:KEY=VALUE[,KEY=VALUE] from args.from_run; write args.out .json and .md."""
    source = Path(args.from_run)
    base = json.loads((source / "config.json").read_text())
    base["rest"]["grow_sizes"] = base["rest"]["grow_sizes"][:1]
    results = []
    for spec in args.variant:
        name, _, overrides = spec.partition(":")
        results.append(run_variant(base, name, [o for o in overrides.split(",") if o], source, args.seed, Path(args.work_dir)))
        out = Path(args.out)
        write_json(out.with_suffix(".json"), {"from_run": str(source), "variants": results})
        write_atomic(out.with_suffix(".md"), markdown(results))
    print(markdown(results))
