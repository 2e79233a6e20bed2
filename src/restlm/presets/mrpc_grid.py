"""The MRPC grid benchmark (benchmarks/mrpc_grid.py): run the Table 2 grid over seeds, summarise it per cell.

`main(args)` runs (or resumes, or only reads) the experiment and writes OUT.json and OUT.md; the
summary, throughput and memory figures and the markdown are the functions below.
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

from restlm.config import load_config
from restlm.experiment import Experiment
from restlm.presets import publish
from restlm.report.cells import group_cells, step_label, values
from restlm.results import collect_results
from restlm.stats import UNIT_INTERVAL, paired_difference, summarise


def summarise_cells(results: dict) -> list[dict]:
    """One summary per (N, G, I) over the seeds that reached it."""
    summaries = []
    for size, steps in group_cells(results["cells"]).items():
        control = steps.get((0, 0), {})
        for (g, i), by_seed in steps.items():
            seeds = sorted(by_seed)
            accuracy = summarise(values(by_seed, "dev_accuracy"), bounds=UNIT_INTERVAL)
            diff = paired_difference([by_seed[s]["dev_accuracy"] for s in seeds if s in control],
                                     [control[s]["dev_accuracy"] for s in seeds if s in control])
            summaries.append({"N": size, "G": g, "I": i, "seeds": len(seeds),
                              "dev_accuracy_mean": accuracy["mean"], "dev_accuracy_std": accuracy["std"],
                              "dev_accuracy_ci95": accuracy["ci95"], "dev_f1_mean": summarise(values(by_seed, "dev_f1"))["mean"],
                              "diff_vs_g0i0_mean": diff["mean"], "diff_vs_g0i0_ci95": diff["ci95"],
                              "diff_excludes_zero": diff["excludes_zero"],
                              "wall_time_s": summarise(values(by_seed, "wall_time_s"))["mean"]})
    return summaries


def chosen_per_seed(results: dict) -> list[dict]:
    """Per N, ReST's step chosen per seed (among G >= 1) on a metric, scored by its dev accuracy, paired with
    the same seed's fine-tuned (G0I0) dev accuracy: chosen on the validation split (the honest figure) and,
    beside it, chosen on dev itself (optimistic: selection on the reported set)."""
    rows = []
    for size, steps in group_cells(results["cells"]).items():
        control = steps.get((0, 0), {})
        for selection in ("val_accuracy", "dev_accuracy"):
            picked = {}
            for seed in control:
                cells = [by_seed[seed] for step, by_seed in steps.items()
                         if step != (0, 0) and seed in by_seed and by_seed[seed].get(selection) is not None]
                if cells:
                    picked[seed] = max(cells, key=lambda c: c[selection])  # the first of the highest
            if not picked:
                continue
            seeds = sorted(picked)
            chosen = [picked[s]["dev_accuracy"] for s in seeds]
            diff = paired_difference(chosen, [control[s]["dev_accuracy"] for s in seeds])
            rows.append({"N": size, "chosen_on": "validation" if selection == "val_accuracy" else "dev (optimistic)",
                         "seeds": len(seeds), "steps": [step_label((picked[s]["G"], picked[s]["I"])) for s in seeds],
                         "dev_accuracy_mean": float(np.mean(chosen)),
                         "dev_accuracy_ci95": summarise(chosen, bounds=UNIT_INTERVAL)["ci95"],
                         "diff_vs_g0i0_mean": diff["mean"], "diff_vs_g0i0_ci95": diff["ci95"],
                         "diff_excludes_zero": diff["excludes_zero"]})
    return rows


def inference_pairs_per_s(experiment: Experiment, checkpoint: Path, repeats: int = 3) -> float:
    """Dev-set predictions per second of a trained checkpoint (best of a few passes)."""
    policy = experiment.new_policy(seed=0)
    policy.load_weights(checkpoint)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        policy.predict(experiment.dev)
        best = min(best, time.perf_counter() - start)
    return len(experiment.dev) / best


def peak_memory_mb(states: dict, measured: float | None) -> float:
    """Peak resident memory of the run: recorded by its stages, else measured outside (VmHWM), else this process."""
    recorded = [r["peak_memory_mb"] for r in states.values() if "peak_memory_mb" in r]
    if recorded:
        return max(recorded)
    return measured if measured is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def finished_so_far(run_dir: Path) -> tuple[Experiment, dict]:
    """The experiment of a run directory and the results of its finished stages, read without a lock."""
    experiment = Experiment.resuming(run_dir)
    experiment.run.state = json.loads((run_dir / "state.json").read_text())
    experiment.load_data()
    return experiment, collect_results(experiment.config, experiment.run, experiment.task)


def markdown(summary: dict) -> str:
    """The summary written by `main` -> mrpc_minilm.md."""
    lines = [f"# MRPC grid with {summary['model']}", "",
             f"Machine: {summary['machine']}  ", f"Command: `{summary['command']}`  ",
             (f"Seeds: {summary['seeds']}; training {summary['train_examples_per_s']:.1f} examples/s, "
              f"inference {summary['inference_pairs_per_s']:.1f} pairs/s, peak memory {summary['peak_memory_mb']:.0f} MB"), "",
             "| N | G | I | seeds | dev acc mean ± std | 95% CI | F1 | paired Δ vs G0I0 [95% CI] | wall time (s) |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for c in summary["cells"]:
        diff = "—" if (c["G"], c["I"]) == (0, 0) else (
            f"{c['diff_vs_g0i0_mean']:+.4f} [{c['diff_vs_g0i0_ci95'][0]:+.4f}, {c['diff_vs_g0i0_ci95'][1]:+.4f}]"
            + (" *" if c["diff_excludes_zero"] else ""))
        lines.append(f"| {c['N']} | {c['G']} | {c['I']} | {c['seeds']} | {c['dev_accuracy_mean']:.4f} ± {c['dev_accuracy_std']:.4f} "
                     f"| [{c['dev_accuracy_ci95'][0]:.4f}, {c['dev_accuracy_ci95'][1]:.4f}] | {c['dev_f1_mean']:.4f} | {diff} "
                     f"| {c['wall_time_s']:.0f} |")
    lines += ["", "`*`: the paired 95% CI excludes zero. Wall time: cumulative from the start of fine-tuning, seed mean.", ""]
    if summary.get("chosen"):
        lines += ["ReST's step chosen per seed, scored on dev, paired with the same seed's fine-tuning (G0I0):", "",
                  "| N | chosen on | seeds | dev acc mean | 95% CI | paired Δ vs G0I0 [95% CI] | steps |",
                  "|---|---|---:|---:|---:|---:|---|"]
        for c in summary["chosen"]:
            lines.append(f"| {c['N']} | {c['chosen_on']} | {c['seeds']} | {c['dev_accuracy_mean']:.4f} "
                         f"| [{c['dev_accuracy_ci95'][0]:.4f}, {c['dev_accuracy_ci95'][1]:.4f}] "
                         f"| {c['diff_vs_g0i0_mean']:+.4f} [{c['diff_vs_g0i0_ci95'][0]:+.4f}, "
                         f"{c['diff_vs_g0i0_ci95'][1]:+.4f}]{' *' if c['diff_excludes_zero'] else ''} "
                         f"| {', '.join(c['steps'])} |")
        lines += ["", "Chosen on validation: the split carved from the training pairs (`data.validation_fraction`); "
                  "dev never chose. Chosen on dev: selection on the reported set, shown only as the optimistic bound.", ""]
    lines += [f"- {note}" for note in summary.get("notes", [])]
    return "\n".join(lines) + "\n"


def main(args: argparse.Namespace) -> None:
    """Run (or resume, or with --summarise-only read) args.run_dir; write args.out .json and .md."""
    run_dir = Path(args.run_dir)
    if args.summarise_only:
        experiment, results = finished_so_far(run_dir)
    else:
        if (run_dir / "config.json").exists():
            experiment = Experiment.resuming(run_dir, seeds=args.seeds)
        else:
            experiment = Experiment(load_config(args.config, [f"run.seeds={args.seeds}", f"run.output_dir={run_dir}", *args.overrides]))
        results = experiment.run_all()
    states = experiment.run.state["stages"]
    speeds = [r["train_examples_per_s"] for r in states.values() if "train_examples_per_s" in r]
    best = max((c for c in results["cells"] if c["checkpoint"]), key=lambda c: c["dev_accuracy"])
    summary = {"machine": f"{platform.node()} {platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}",
               "command": args.run_command or " ".join(["python", *sys.argv]),
               "summarised_by": " ".join(["python", *sys.argv]), "notes": args.note, "model": experiment.config.model.name,
               "seeds": len({c["seed"] for c in results["cells"]}),
               # the median over training stages: stages that shared the CPU with other jobs ran slower
               "train_examples_per_s": float(np.median(speeds)),
               "inference_pairs_per_s": inference_pairs_per_s(experiment, run_dir / "checkpoints" / best["checkpoint"]),
               "peak_memory_mb": peak_memory_mb(states, args.peak_memory_mb),
               "baselines": results["baselines"], "cells": summarise_cells(results), "chosen": chosen_per_seed(results)}
    publish(args.out, summary, markdown(summary))
