"""benchmarks/generation_speed.py: sampled tokens/s of every generation engine against a plain
batch-by-batch `model.generate` loop in float32, in one process, alternating, medians of rounds.

Two workloads on SmolLM2-135M-Instruct with the translation task's prompts: Grow sampling (Multi30k
train sources x K samples at temperature T) and greedy decoding of test_2016_flickr sentences, whose
corpus chrF against the references shows that speed did not cost quality. The machine's matmul
GFLOP/s in float32 and bf16 are measured in the same run, for the share of the peak each reaches.
"""
from __future__ import annotations

import statistics
import time

import torch
from accelerate import Accelerator

from restlm.config import GenerationConfig, load_config
from restlm.machine import machine
from restlm.precision import matmul_gflops
from restlm.rewards.generation import corpus_chrf
from restlm.tasks import build_task

ENGINES = {  # name -> generation settings
    "hf float32": GenerationConfig(engine="hf", dtype="float32"),
    "hf bfloat16": GenerationConfig(engine="hf", dtype="bfloat16"),
    "torch float32": GenerationConfig(engine="torch", dtype="float32"),
    "torch bfloat16": GenerationConfig(engine="torch", dtype="bfloat16"),
    "ctranslate2 int8": GenerationConfig(engine="ctranslate2", compute_type="int8"),
    "ctranslate2 float32": GenerationConfig(engine="ctranslate2", compute_type="float32"),
}


@torch.no_grad()
def plain_generate(policy, examples, k: int, greedy: bool, temperature: float, max_new_tokens: int, seed: int) -> tuple[int, list]:
    """The baseline: `model.generate` in float32, batch by batch in input order; (tokens to EOS, greedy texts)."""
    from restlm.policies.generative import count_until_eos

    tokens, texts, tokenizer = 0, [], policy.tokenizer
    for index, start in enumerate(range(0, len(examples), policy.batch_size)):
        batch = examples[start : start + policy.batch_size]
        encoded = tokenizer([policy.prompt(e) for e in batch], return_tensors="pt", padding=True,
                            padding_side="left", add_special_tokens=False)
        torch.manual_seed(seed + index)
        sampling = {"do_sample": False} if greedy else {"do_sample": True, "temperature": temperature, "top_k": 0}
        out = policy.unwrapped.generate(**encoded, num_return_sequences=1 if greedy else k,
                                        max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                                        eos_token_id=policy.eos_ids, **sampling)
        new = out[:, encoded["input_ids"].shape[1]:]
        counts = count_until_eos(new, policy.eos_ids)
        tokens += sum(counts)
        texts += [tokenizer.decode(row[:c], skip_special_tokens=True).strip() for row, c in zip(new.tolist(), counts)]
    return tokens, texts


def run(config_path: str, overrides: list[str], sources: int, k: int, temperature: float, greedy_sentences: int,
        rounds: int, engines: list[str], command: str) -> dict:
    config = load_config(config_path, overrides)
    task = build_task(config, Accelerator())
    task.load_data()
    policy = task.new_policy(0)
    test = next(iter(task.tests.values()))[:greedy_sentences]
    grow = task.train[:sources]
    max_new = policy.max_new_tokens
    parameters = sum(p.numel() for p in policy.unwrapped.parameters())
    gflop_per_token = 2 * parameters / 1e9
    peaks = {"float32": [], "bfloat16": []}
    timings = {name: {"sample": [], "greedy": []} for name in ["plain generate", *engines]}
    tokens = {name: {} for name in timings}
    greedy_texts, syncs = {}, {}
    for r in range(rounds):
        peaks["float32"].append(matmul_gflops(torch.float32, n=1024, rows=64, seconds=1.0))
        peaks["bfloat16"].append(matmul_gflops(torch.bfloat16, n=1024, rows=64, seconds=1.0))
        order = ["plain generate", *engines] if r % 2 == 0 else [*reversed(engines), "plain generate"]
        for name in order:
            for workload in ("sample", "greedy"):
                greedy = workload == "greedy"
                examples = test if greedy else grow
                if name == "plain generate":
                    start = time.perf_counter()
                    count, texts = plain_generate(policy, examples, k, greedy, temperature, max_new, seed=r)
                    seconds = time.perf_counter() - start
                else:
                    policy.use_engine(ENGINES[name])
                    syncs[name] = policy.engine.sync_seconds  # the conversion, once per weights
                    policy.sample(examples[:2], k=1, greedy=True)  # warm-up (and the sync) outside the timing
                    start = time.perf_counter()
                    out = policy.sample(examples, k=k, temperature=temperature, greedy=greedy, seed=r)
                    seconds, count = time.perf_counter() - start, policy.last_generated_tokens
                    syncs[name] = policy.engine.sync_seconds
                    texts = [o[0] for o in out]
                timings[name][workload].append(count / seconds)
                tokens[name][workload] = count
                if greedy:
                    greedy_texts[name] = texts
    refs = [e.target for e in test]
    peak = max(statistics.median(peaks["float32"]), statistics.median(peaks["bfloat16"]))
    baseline = {w: statistics.median(timings["plain generate"][w]) for w in ("sample", "greedy")}
    rows = []
    for name in timings:
        per_s = {w: statistics.median(timings[name][w]) for w in ("sample", "greedy")}
        rows.append({"engine": name, "tokens_per_s": per_s["sample"], "greedy_tokens_per_s": per_s["greedy"],
                     "speedup_vs_plain_generate": per_s["sample"] / baseline["sample"],
                     "greedy_speedup_vs_plain_generate": per_s["greedy"] / baseline["greedy"],
                     "achieved_gflops": per_s["sample"] * gflop_per_token,
                     "percent_of_peak": 100 * per_s["sample"] * gflop_per_token / peak,
                     "sync_seconds": syncs.get(name, 0.0), "sampled_tokens": tokens[name]["sample"],
                     "greedy_chrf": corpus_chrf(greedy_texts[name], refs),
                     "rounds_tokens_per_s": timings[name]["sample"]})
    return {"machine": machine(), "command": command, "model": config.model.name, "parameters": parameters,
            "gflop_per_token": gflop_per_token, "matmul_gflops_fp32": statistics.median(peaks["float32"]),
            "matmul_gflops_bf16": statistics.median(peaks["bfloat16"]), "sources": len(grow),
            "samples_per_input": k, "temperature": temperature, "max_new_tokens": max_new,
            "greedy_sentences": len(test), "rounds": rounds, "engines": rows}


def markdown(summary: dict) -> str:
    lines = [f"# Generation speed: {summary['model']} ({summary['parameters'] / 1e6:.0f}M parameters)", "",
             f"Machine: {summary['machine']}  ", f"Command: `{summary['command']}`  ",
             f"Matmul peak measured in the same run: float32 {summary['matmul_gflops_fp32']:.0f} GFLOP/s, "
             f"bf16 {summary['matmul_gflops_bf16']:.0f} GFLOP/s; a token costs {summary['gflop_per_token']:.2f} GFLOP.",
             "", f"Sampling: {summary['sources']} Multi30k train sources x {summary['samples_per_input']} samples, "
             f"T {summary['temperature']}, at most {summary['max_new_tokens']} new tokens. Greedy: "
             f"{summary['greedy_sentences']} test_2016_flickr sentences. Medians of {summary['rounds']} alternating rounds.", "",
             "| engine | sampled tokens/s | x plain generate | greedy tokens/s | x plain generate | GFLOP/s | % of peak "
             "| weight sync (s) | greedy chrF |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for e in summary["engines"]:
        lines.append(f"| {e['engine']} | {e['tokens_per_s']:.1f} | {e['speedup_vs_plain_generate']:.2f} "
                     f"| {e['greedy_tokens_per_s']:.1f} | {e['greedy_speedup_vs_plain_generate']:.2f} "
                     f"| {e['achieved_gflops']:.1f} | {e['percent_of_peak']:.1f} | {e['sync_seconds']:.1f} "
                     f"| {e['greedy_chrf']:.2f} |")
    lines += ["", "Peak: the higher of the two matmul figures. Weight sync: converting or copying the policy's "
              "weights for the engine, paid again after every training step that changes them."]
    return "\n".join(lines) + "\n"
