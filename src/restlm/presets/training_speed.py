"""benchmarks/training_speed.py: supervised training steps in bf16 autocast against float32, through
`train_policy` itself, in one process, alternating, medians of rounds.

Two policies, each at its default config's batch size: SmolLM2-135M-Instruct on Multi30k pairs
(the translation task's fine-tuning and Improve steps) and the MiniLM classifier on MRPC pairs (the
main job's). The learning rate is 0, so every round sees the same weights and the two precisions'
mean losses on the same batches can be set side by side.
"""
from __future__ import annotations

import statistics

import torch
from accelerate import Accelerator

from restlm.config import TrainConfig
from restlm.data.glue import read_mrpc
from restlm.data.location import data_root
from restlm.data.parallel import load_multi30k
from restlm.machine import machine
from restlm.policies.base import TrainItem
from restlm.policies.classifier import ClassifierPolicy
from restlm.policies.generative_loading import load_generative_policy
from restlm.precision import bf16_pays, matmul_gflops
from restlm.training import train_policy

DTYPES = ("float32", "bfloat16")


def workloads(pairs: int) -> dict:
    """name -> (policy, items, batch size) of the two policies restlm trains most."""
    accelerator = Accelerator(cpu=True)
    smollm2 = load_generative_policy("smollm2", accelerator, prompt_template="Translate German to English: {text}",
                                     max_length=128, max_new_tokens=64, batch_size=16)
    minilm = ClassifierPolicy.from_pretrained("minilm", accelerator, num_labels=2, max_length=128)
    translation = [TrainItem(e, e.target) for e in load_multi30k(None, "train")[:pairs]]
    mrpc = [TrainItem(e, e.label) for e in read_mrpc(data_root() / "mrpc", "train")[: 2 * pairs]]
    return {"smollm2 (Multi30k, batch 16)": (smollm2, translation, 16),
            "minilm classifier (MRPC, batch 32)": (minilm, mrpc, 32)}


def run(pairs: int, rounds: int, command: str) -> dict:
    peak = {"matmul_gflops_fp32": matmul_gflops(torch.float32), "matmul_gflops_bf16": matmul_gflops(torch.bfloat16)}
    rows = []
    for name, (policy, items, batch) in workloads(pairs).items():
        speeds, losses = {d: [] for d in DTYPES}, {}
        for _ in range(rounds):
            for dtype in DTYPES:
                stats = train_policy_step(policy, items, batch, dtype)
                speeds[dtype].append(stats.examples_per_s)
                losses[dtype] = stats.mean_loss
        median = {d: statistics.median(v) for d, v in speeds.items()}
        rows.append({"policy": name, "examples": len(items),
                     **{f"{d}_examples_per_s": median[d] for d in DTYPES},
                     "speedup_bf16": median["bfloat16"] / median["float32"],
                     **{f"{d}_mean_loss": losses[d] for d in DTYPES},
                     "loss_relative_difference": abs(losses["bfloat16"] - losses["float32"]) / abs(losses["float32"])})
    return {"machine": machine(), "command": command, "rounds": rounds, **peak,
            "auto_chooses": "bfloat16" if bf16_pays() else "float32", "workloads": rows}


def train_policy_step(policy, items, batch_size: int, dtype: str):
    """One pass over `items` at learning rate 0 (the weights stay as they are) in `dtype`."""
    return train_policy(policy, items, TrainConfig(batch_size=batch_size, dtype=dtype, warmup_ratio=0.0), 0.0, 1,
                        seed=0, description=f"train {dtype}")


def markdown(summary: dict) -> str:
    lines = ["# Supervised training in bf16 autocast against float32", "",
             f"Machine: {summary['machine']}. Command: `{summary['command']}`. Medians of {summary['rounds']} "
             f"alternating rounds; matmuls {summary['matmul_gflops_fp32']:.0f} GFLOP/s in float32, "
             f"{summary['matmul_gflops_bf16']:.0f} in bf16; `train.dtype: auto` chooses {summary['auto_chooses']} here.",
             "", "| policy | examples | float32 ex/s | bf16 ex/s | x float32 | mean loss float32 | bf16 | rel. diff |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in summary["workloads"]:
        lines.append(f"| {r['policy']} | {r['examples']} | {r['float32_examples_per_s']:.2f} | "
                     f"{r['bfloat16_examples_per_s']:.2f} | {r['speedup_bf16']:.2f} | {r['float32_mean_loss']:.4f} | "
                     f"{r['bfloat16_mean_loss']:.4f} | {r['loss_relative_difference']:.2%} |")
    return "\n".join(lines) + "\n"
