"""benchmarks/online_speed.py: one GRPO step of SmolLM2-135M-Instruct on the arithmetic task with its token passes
in bf16 autocast against float32 (`grpo.dtype`), in one process, alternating, medians of rounds.

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
from restlm.ppo.grpo import GRPO
from restlm.precision import bf16_pays
from restlm.presets.generation_speed import machine
from restlm.tasks import build_task

DTYPES = ("float32", "bfloat16")
PASSES = ("time/score_s", "time/optimise_s")


def run(config_path: str, prompts: int, rounds: int, command: str) -> dict:
    config = load_config(config_path)
    task = build_task(config, Accelerator(cpu=True))
    task.load_data()
    policy, examples = task.new_policy(0), task.train[:prompts]
    grpo = dataclasses.replace(config.grpo, batch_size=prompts, learning_rate=1e-12, total_steps=1, eval_every=0)
    times = {d: {p: [] for p in (*PASSES, "time/generate_s")} for d in DTYPES}
    clip = {}
    for _ in range(rounds):
        for dtype in DTYPES:
            (metrics,) = GRPO(policy, task.proxy_reward(), examples, GRPOConfig(**{**dataclasses.asdict(grpo),
                                                                                   "dtype": dtype})).train(verbose=False)
            for name in times[dtype]:
                times[dtype][name].append(metrics[name])
            clip[dtype] = metrics["grpo/clip_frac"]
    median = {d: {p: statistics.median(v) for p, v in times[d].items()} for d in DTYPES}
    passes = {d: sum(median[d][p] for p in PASSES) for d in DTYPES}
    return {"machine": machine(), "command": command, "rounds": rounds, "samples": prompts * grpo.samples_per_prompt,
            "auto_chooses": "bfloat16" if bf16_pays() else "float32", "median_s": median,
            "passes_s": passes, "speedup_bf16": passes["float32"] / passes["bfloat16"], "first_step_clip_frac": clip}


def markdown(summary: dict) -> str:
    lines = ["# GRPO's token passes in bf16 autocast against float32", "",
             f"Machine: {summary['machine']}. Command: `{summary['command']}`. One GRPO step of "
             f"{summary['samples']} samples, medians of {summary['rounds']} alternating rounds; `dtype: auto` "
             f"chooses {summary['auto_chooses']} here.", "",
             "| dtype | sampling (s) | scoring (s) | optimising (s) | scoring + optimising (s) | first-step clip fraction |",
             "|---|---:|---:|---:|---:|---:|"]
    for d in DTYPES:
        m = summary["median_s"][d]
        lines.append(f"| {d} | {m['time/generate_s']:.1f} | {m['time/score_s']:.1f} | {m['time/optimise_s']:.1f} | "
                     f"{summary['passes_s'][d]:.1f} | {summary['first_step_clip_frac'][d]:.3f} |")
    lines += ["", f"bf16 runs the two passes **{summary['speedup_bf16']:.2f}x** as fast as float32."]
    return "\n".join(lines) + "\n"
