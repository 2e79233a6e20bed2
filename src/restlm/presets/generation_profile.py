"""benchmarks/generation_speed.py --profile ENGINE: where one engine's sampling time goes (torch.profiler's
self CPU time per operator), for the issue's question of how far from the machine's limit generation runs."""
from __future__ import annotations

import time

from accelerate import Accelerator

from restlm.config import load_config
from restlm.generation import Sampling
from restlm.tasks import build_task


def profile(config_path: str, overrides: list[str], engine: str, sources: int, k: int, temperature: float,
            command: str, top: int = 12) -> dict:
    """Sample `sources` Multi30k train sources x k through `engine` (a generation_speed.ENGINES name) under
    the profiler; the operators with the most self CPU time, each with its share."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    from restlm.presets.generation_speed import ENGINES, machine

    config = load_config(config_path, overrides)
    task = build_task(config, Accelerator())
    task.load_data()
    policy = task.new_policy(0)
    policy.use_engine(ENGINES[engine])
    examples = task.train[:sources]
    sampling = Sampling(n=k, greedy=False, temperature=temperature, max_new_tokens=policy.max_new_tokens)
    policy.generate_ids(examples[:2], sampling, seed=0)  # warm-up and the weight sync, outside the profile
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        out = policy.generate_ids(examples, sampling, seed=0)
        seconds = time.perf_counter() - start
    tokens = sum(len(ids) for per in out for ids in per)
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    rows = [{"operator": e.key, "self_cpu_percent": 100 * e.self_cpu_time_total / total,
             "self_cpu_s": e.self_cpu_time_total / 1e6, "calls": e.count} for e in events[:top]]
    return {"machine": machine(), "command": command, "engine": engine, "sources": sources, "samples_per_input": k,
            "temperature": temperature, "tokens": tokens, "seconds": seconds, "tokens_per_s_profiled": tokens / seconds,
            "operators": rows}


def markdown(summary: dict) -> str:
    lines = [f"# Where sampling time goes: {summary['engine']}", "",
             f"Machine: {summary['machine']}  ", f"Command: `{summary['command']}`  ",
             f"{summary['sources']} Multi30k sources x {summary['samples_per_input']} samples at T "
             f"{summary['temperature']}: {summary['tokens']} tokens in {summary['seconds']:.1f} s under the profiler "
             f"({summary['tokens_per_s_profiled']:.0f} tokens/s; the profiler slows it).", "",
             "| operator | self CPU % | self CPU (s) | calls |", "|---|---:|---:|---:|"]
    lines += [f"| {r['operator']} | {r['self_cpu_percent']:.1f} | {r['self_cpu_s']:.2f} | {r['calls']} |"
              for r in summary["operators"]]
    return "\n".join(lines) + "\n"
