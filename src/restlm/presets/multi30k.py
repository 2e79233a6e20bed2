"""The Multi30k benchmark (benchmarks/multi30k_smollm2.py): the ReST paper's Table 1 rows, German to English.

Step 1. the BC trajectory with `Experiment` (resumable); step 2. GOLD and BVMPO, one Grow and one
Improve step each from the same fine-tuned checkpoint; step 3. Grow sampling speed against a plain
`model.generate` loop; step 4. the summary and its markdown. `main(args, root)` runs all four.

Row labels follow the paper: with a first threshold of 0 (keep every sample), our first Improve step
is the paper's I0 ("ReST G1I0"), so `I` = our Improve step - 1; `improve_step` keeps ours.
"""
from __future__ import annotations

import argparse
import copy
import platform
import sys
import time
from pathlib import Path

import torch
from accelerate import Accelerator

from restlm import run_layout as layout
from restlm.atomic_files import read_jsonl
from restlm.config import ExperimentConfig, load_config
from restlm.data.examples import Example
from restlm.experiment import Experiment
from restlm.presets import publish
from restlm.presets.generation_speed import plain_generate
from restlm.presets.multi30k_controls import CONTROLS_KEY, kept_controls
from restlm.rest import ReST
from restlm.tasks import build_task

METRICS = ["dev_reward", "dev_bleu", "dev_chrf", "test_bleu", "test_chrf", "iwslt_bleu", "iwslt_chrf"]


# ---------------------------------------------------------------- step 1. the BC trajectory
def run_bc(config: ExperimentConfig, run_dir: Path) -> dict:
    """Run (or finish) the experiment in run_dir; its results dict."""
    if (run_dir / "state.json").exists():
        return Experiment.resuming(run_dir).run_all()
    return Experiment(config, run_dir).run_all()


def paper_step(config: ExperimentConfig, improve_step: int) -> int:
    """Our Improve step in the paper's numbering (I0 = the unfiltered first step), when it applies."""
    return improve_step - 1 if improve_step and config.rest.thresholds[0] == 0 else improve_step


def row(config: ExperimentConfig, cell: dict, loss: str) -> dict:
    """A results cell (or a standalone ReST record) -> one table row of the summary."""
    grow_time = cell.get("grow_wall_time_s") if cell["I"] == 1 else 0.0  # the Grow step counts once, at its first Improve
    return {"G": cell["G"], "I": paper_step(config, cell["I"]), "improve_step": cell["I"], "loss": loss,
            "threshold": cell.get("threshold"), "kept": cell.get("kept"),
            "heldout_reward": cell["dev_reward"], **{k: cell.get(k) for k in METRICS if k != "dev_reward"},
            "distinct_samples": cell.get("distinct_samples"),
            "wall_time_s": cell["stage_wall_time_s"] + (grow_time or 0.0)}


# ---------------------------------------------------------------- step 2. other losses
def run_loss(config: ExperimentConfig, run_dir: Path, loss: str, sft_record: dict) -> list[dict]:
    """One Grow and one Improve step with `loss` from the BC run's fine-tuned checkpoint; its rows."""
    variant = copy.deepcopy(config)
    variant.rest.loss, variant.rest.grow_steps, variant.rest.improve_steps = loss, 1, 1
    task = build_task(variant, Accelerator())
    task.load_data()
    policy = task.new_policy(0)
    policy.load_weights(run_dir / layout.checkpoint_dir(layout.seed_stage(0, "sft")))
    out = run_dir.parent / f"{run_dir.name}_{loss}"
    rest = ReST(policy, variant.rest.reward, task.train, task.evaluate, variant.rest, variant.train,
                run_dir=str(out), selection_metric=task.selection_metric)
    try:
        records = rest.fit(variant.rest.grow_sizes[0], 0, prefix=layout.STANDALONE, start="start",
                           start_score=sft_record[task.selection_metric])
        grow = rest.run_dir.stage(layout.grow_stage(layout.STANDALONE, 1))
    finally:
        rest.run_dir.close()
    return [row(variant, {**r, "distinct_samples": grow["distinct_samples"], "grow_wall_time_s": grow["wall_time_s"],
                          "stage_wall_time_s": r["wall_time_s"]}, loss) for r in records]


# ---------------------------------------------------------------- step 3. sampling speed
def plain_generate_tokens(policy, sources: list[Example], k: int, temperature: float, seed: int) -> int:
    """The baseline: `model.generate` batch by batch in input order (no length sorting); tokens to EOS."""
    return plain_generate(policy, sources, k, False, temperature, policy.max_new_tokens, seed)[0]


def sampling_speed(config: ExperimentConfig, run_dir: Path, results: dict) -> dict:
    """Sampled tokens/s of restlm's Grow sampling and of the plain loop, same inputs, same process."""
    task = build_task(config, Accelerator())
    task.load_data()
    policy = task.new_policy(0)
    policy.load_weights(run_dir / layout.checkpoint_dir(layout.seed_stage(0, "sft")))
    grown = read_jsonl(run_dir / layout.grown_file(layout.grow_stage(layout.trajectory(0, config.rest.grow_sizes[0]), 1)))
    sources = [task.train[i] for i in sorted({r["index"] for r in grown if r["source"] == "grown"})]
    k, temperature = config.rest.samples_per_input, config.rest.temperature
    policy.sample(sources[: policy.batch_size], k=k, temperature=temperature, seed=0)  # warm-up
    start = time.perf_counter()
    policy.sample(sources, k=k, temperature=temperature, seed=1)
    grow_s, grow_tokens = time.perf_counter() - start, policy.last_generated_tokens
    start = time.perf_counter()
    base_tokens = plain_generate_tokens(policy, sources, k, temperature, seed=1)
    base_s = time.perf_counter() - start
    return {"grow_tokens_per_s": grow_tokens / grow_s, "baseline_generate_tokens_per_s": base_tokens / base_s,
            "speed_inputs": len(sources), "speed_samples_per_input": k}


# ---------------------------------------------------------------- step 4. report
def summary_markdown(summary: dict) -> str:
    """The summary written by `main` -> multi30k_smollm2.md."""
    lines = ["# ReST on Multi30k De-En with SmolLM2-135M-Instruct", "",
             f"Machine: {summary['machine']}  ", f"Command: `{summary['command']}`  ",
             (f"Grow sampling {summary['grow_tokens_per_s']:.1f} tokens/s against a plain `model.generate` loop "
              f"{summary['baseline_generate_tokens_per_s']:.1f} tokens/s (ratio {summary['grow_speedup']:.2f}), "
              f"{summary['speed_inputs']} inputs x {summary['speed_samples_per_input']} samples."), "",
             "| Row | G | I | loss | threshold | kept | held-out reward | dev BLEU | test BLEU | test chrF | IWSLT BLEU | IWSLT chrF | distinct samples | wall time (s) |",
             "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]

    def fmt(value, digits=2):
        return "—" if value is None else f"{value:.{digits}f}"

    for r in summary["rows"]:
        name = r.get("name") or ("BC" if (r["G"], r["I"]) == (0, 0) else "ReST")
        lines.append(f"| {name} | {r['G']} | {r['I']} | {r['loss']} | {fmt(r['threshold'])} | {r['kept'] if r['kept'] is not None else '—'} "
                     f"| {fmt(100 * r['heldout_reward'], 1)} | {fmt(r['dev_bleu'])} | {fmt(r['test_bleu'])} | {fmt(r['test_chrf'])} "
                     f"| {fmt(r['iwslt_bleu'])} | {fmt(r['iwslt_chrf'])} | {fmt(r['distinct_samples'])} | {fmt(r['wall_time_s'], 0)} |")
    goal = summary["goal"]
    lines += ["", ("Held-out reward: mean sentence chrF / 100 of the greedy translations of the selection set (val), x100 "
                   "as in the paper's Table 1. BLEU/chrF: sacrebleu corpus scores; IWSLT14 scored lower-cased. Wall time: "
                   "the stage's own time (its Grow step included at the first Improve step)."), "",
              (f"**Goal** (best ReST row by held-out reward, {goal['best_row']}, against BC G0I0): test BLEU "
               f"{goal['test_bleu_gain']:+.2f} (goal: +2.00), IWSLT BLEU {goal['iwslt_bleu_gain']:+.2f} (goal: no loss). "
               f"Met: {'yes' if goal['met'] else 'no'}."), ""]
    lines += [f"- {note}" for note in summary.get("notes", [])]
    if controls := summary.get(CONTROLS_KEY):  # benchmarks/multi30k_controls.py's rows (its own .md has them all)
        lines += ["", "## Controls: ReST against BC matched and BC converged (multi30k_controls.md)", "",
                  "| row | start | seeds | test BLEU | IWSLT BLEU |", "|---|---|---:|---:|---:|"]
        lines += [f"| {r['method']} | {r['start']} | {r['seeds']} | {fmt(r['test_bleu_mean'])} | "
                  f"{fmt(r['iwslt_bleu_mean'])} |" for r in controls["methods"]]
        goal = controls["goal"]["rest_minus_bc_matched_test_bleu"]
        lines += ["", f"ReST − BC matched (test BLEU): {goal['diff']:+.2f} [{goal['ci95'][0]:+.2f}, "
                  f"{goal['ci95'][1]:+.2f}], goal ≥ 2 with the interval above 0: "
                  f"{'met' if controls['goal']['met'] else 'not met'}." if goal else ""]
    return "\n".join(lines) + "\n"


def goal(rows: list[dict]) -> dict:
    """The best ReST row by held-out reward against BC G0I0: its test and IWSLT BLEU gains, and whether both goals hold."""
    base = next(r for r in rows if (r["G"], r["I"]) == (0, 0))
    best = max((r for r in rows if r["G"] > 0), key=lambda r: r["heldout_reward"])
    gain, iwslt = best["test_bleu"] - base["test_bleu"], best["iwslt_bleu"] - base["iwslt_bleu"]
    return {"best_row": f"G{best['G']}I{best['I']} {best['loss']}", "test_bleu_gain": gain, "iwslt_bleu_gain": iwslt,
            "met": gain >= 2.0 and iwslt >= 0.0}


def main(args: argparse.Namespace, root: Path) -> None:
    """Steps 1 to 4 with the benchmark's arguments; `root` is the repository (the config is named relative to it)."""
    run_dir = Path(args.run_dir)
    config = load_config(args.config, args.overrides + [f"run.output_dir={run_dir}"])
    started = time.perf_counter()
    results = run_bc(config, run_dir)
    cells = [c for c in results["cells"] if c["seed"] == 0]
    rows = [row(config, c, "bc") for c in cells]
    pretrained = results["baselines"].get("pretrained, prompted (no fine-tuning)")
    sft = next(c for c in cells if (c["G"], c["I"]) == (0, 0))
    for loss in [name for name in args.losses.split(",") if name]:
        rows += run_loss(config, run_dir, loss, sft)
    speed = sampling_speed(config, run_dir, results)
    summary = {"machine": f"{platform.node()}: {platform.processor() or platform.machine()}, "
                          f"{torch.get_num_threads()} torch threads, no GPU",
               "command": " ".join(["python", *sys.argv]), **speed,
               "grow_speedup": speed["grow_tokens_per_s"] / speed["baseline_generate_tokens_per_s"],
               "config": str(Path(args.config).relative_to(root)) if Path(args.config).is_relative_to(root) else args.config,
               "pretrained": {k: v[0] for k, v in pretrained.items()} if pretrained else None,
               "rows": rows, "goal": goal(rows), "benchmark_wall_time_s": time.perf_counter() - started,
               "notes": args.note}
    if (controls := kept_controls(args.out)) is not None:  # the controls' rows (multi30k_controls.merge_into) stay
        summary[CONTROLS_KEY] = controls
    publish(args.out, summary, summary_markdown(summary))
