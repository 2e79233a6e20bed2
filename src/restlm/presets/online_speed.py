"""benchmarks/online_speed.py: one GRPO step of SmolLM2-135M-Instruct on the arithmetic task with its token passes
in bf16 autocast against float32 (`grpo.dtype`), and with the logits of the output positions only (what the
causal policy computes) against every position's (the pass before it: `keeps_logits` off), in one process,
alternating, medians of rounds. The baseline is float32 over every position.

Each round is one step from the same weights (learning rate 1e-12: the weights stay put) on the same 8 prompts
x 8 samples, drawn by the same engine and seed in both precisions, so the scoring pass (the policy's and the
start's log-probs) and the optimising pass (forward and backward) see the same tokens; the sampling itself does
not depend on `dtype`. The first step's ratio is 1 in both, which the clip fraction shows.
"""
from __future__ import annotations

import dataclasses
import statistics

from accelerate import Accelerator

from restlm.config import load_config
from restlm.config.grpo import GRPOConfig
from restlm.machine import machine
from restlm.ppo.grpo import GRPO
from restlm.precision import bf16_pays
from restlm.tasks import build_task

DTYPES = ("float32", "bfloat16")
LOGITS = ("every position", "output positions")
SETTINGS = [(d, logits) for logits in LOGITS for d in DTYPES]
BASELINE = ("float32", "every position")
PASSES = ("time/score_s", "time/optimise_s")


def run(config_path: str, prompts: int, rounds: int, command: str) -> dict:
    config = load_config(config_path)
    task = build_task(config, Accelerator(cpu=True))
    task.load_data()
    policy, examples = task.new_policy(0), task.train[:prompts]
    grpo = dataclasses.replace(config.grpo, batch_size=prompts, learning_rate=1e-12, total_steps=1, eval_every=0)
    times = {v: {p: [] for p in (*PASSES, "time/generate_s")} for v in SETTINGS}
    clip = {}
    for _ in range(rounds):
        for dtype, logits in SETTINGS:
            policy.logits_from_first_output = logits != LOGITS[0]
            step = GRPO(policy, task.proxy_reward(), examples, GRPOConfig(**{**dataclasses.asdict(grpo), "dtype": dtype}))
            (metrics,) = step.train(verbose=False)
            for name in times[dtype, logits]:
                times[dtype, logits][name].append(metrics[name])
            clip[dtype, logits] = metrics["grpo/clip_frac"]
    median = {v: {p: statistics.median(t) for p, t in times[v].items()} for v in SETTINGS}
    passes = {v: sum(median[v][p] for p in PASSES) for v in SETTINGS}
    rows = [{"dtype": d, "logits": logits, "median_s": median[d, logits], "passes_s": passes[d, logits],
             "speedup": passes[BASELINE] / passes[d, logits], "first_step_clip_frac": clip[d, logits]}
            for d, logits in SETTINGS]
    return {"machine": machine(), "command": command, "rounds": rounds, "samples": prompts * grpo.samples_per_prompt,
            "auto_chooses": "bfloat16" if bf16_pays() else "float32", "baseline": dict(zip(("dtype", "logits"), BASELINE)),
            "variants": rows}


def markdown(summary: dict) -> str:
    lines = ["# GRPO's token passes in bf16 autocast against float32", "",
             f"Machine: {summary['machine']}. Command: `{summary['command']}`. One GRPO step of "
             f"{summary['samples']} samples, medians of {summary['rounds']} alternating rounds; `dtype: auto` "
             f"chooses {summary['auto_chooses']} here.", "",
             "| dtype | logits of | sampling (s) | scoring (s) | optimising (s) | scoring + optimising (s) | "
             "speed-up | first-step clip fraction |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for row in summary["variants"]:
        m = row["median_s"]
        lines.append(f"| {row['dtype']} | {row['logits']} | {m['time/generate_s']:.1f} | {m['time/score_s']:.1f} | "
                     f"{m['time/optimise_s']:.1f} | {row['passes_s']:.1f} | {row['speedup']:.2f}x | "
                     f"{row['first_step_clip_frac']:.3f} |")
    baseline = summary["baseline"]
    lines += ["", f"Speed-up: the two passes against {baseline['dtype']} with the logits of {baseline['logits']}."]
    return "\n".join(lines) + "\n"
