"""The reward-model search benchmark (benchmarks/reward_model_search.py): honest model selection on HH-RLHF.

A small grid per backbone is tried on a validation split of the training pairs; each backbone's
best candidate is retrained on all of them and scored once on the held-out pairs (the split of
restlm.presets.reward_models). `main(args, usage_error)` runs it and rewrites OUT/reward_models.{json,md}.
"""
from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from restlm.atomic_files import write_atomic, write_json
from restlm.data.splits import train_eval_split
from restlm.reward_models.bradley_terry import RewardTrainConfig
from restlm.reward_models.fitting import load_hh_split, run_reward_model

LORA = {"r": 16, "alpha": 32, "dropout": 0.0}
# backbone -> (model, LoRA options, candidate training settings); LoRA trains few weights: larger steps
GRIDS = {
    "minilm": ("minilm", None, [{"learning_rate": lr, "epochs": e} for lr in (3e-5, 1e-4) for e in (1, 3)]),
    "smollm2-lora": ("smollm2", LORA, [{"learning_rate": lr, "epochs": e} for lr in (2e-4, 5e-4) for e in (1, 2)]),
    "smollm2": ("smollm2", None, [{"learning_rate": lr, "epochs": e} for lr in (1e-5, 3e-5) for e in (1, 2)]),
}


def candidate_name(backbone: str, settings: dict) -> str:
    """A candidate's name in the results: backbone and its settings."""
    return f"{backbone} lr={settings['learning_rate']:g} epochs={settings['epochs']}"


def markdown(summary: dict) -> str:
    """A search summary (OUT/reward_models.json) -> OUT/reward_models.md."""
    lines = ["# Reward models on HH-RLHF helpful-base, chosen on a validation split", "",
             f"Machine: {summary['machine']}  ", f"Command: `{summary['command']}`  ",
             (f"Data: {summary['data']}. Held out: {summary['eval_pairs']} pairs (the split of "
              f"benchmarks/reward_models.py, seed 0). The other {summary['train_pairs']} pairs are split again "
              f"(seed 1): each candidate trains on {summary['fit_pairs']} and is scored on "
              f"{summary['validation_pairs']} validation pairs; the best candidate of each backbone is then "
              f"retrained on all {summary['train_pairs']} and scored once on the held-out pairs."), "",
             "## Chosen, scored on the held-out pairs", "",
             "| backbone | settings | validation accuracy | held-out pairwise accuracy | train pairs/s |",
             "|---|---|---:|---:|---:|"]
    for m in summary["models"]:
        lines.append(f"| {m['name']} | lr {m['config']['learning_rate']:g}, {m['config']['epochs']} epoch(s) | "
                     f"{m['validation_accuracy']:.4f} | {m['heldout_pairwise_accuracy']:.4f} | "
                     f"{m['train_pairs_per_s']:.1f} |")
    lines += ["", "## Every candidate, on the validation pairs", "",
              "| candidate | validation accuracy | train pairs/s | train time (s) |", "|---|---:|---:|---:|"]
    for c in summary["search"]:
        lines.append(f"| {c['candidate']} | {c['validation_accuracy']:.4f} | {c['train_pairs_per_s']:.1f} | "
                     f"{c['train_time_s']:.0f} |")
    n = summary["eval_pairs"]
    lines += ["", f"One standard error of an accuracy near 0.6 on {n} pairs: {(0.24 / max(n, 1)) ** 0.5:.3f}.",
              f"Total time: {summary['wall_time_s']:.0f} s."]
    return "\n".join(lines) + "\n"


def main(args: argparse.Namespace, usage_error: Callable[[str], None]) -> None:
    """Search the grids of args.backbones; rewrite OUT/reward_models.{json,md} after each candidate and model.

    `usage_error` reports a bad argument (the parser's `error`: usage and exit 2).
    """
    names = [n for n in args.backbones.split(",") if n]
    if unknown := [n for n in names if n not in GRIDS]:
        usage_error(f"unknown backbone(s) {unknown}; choose from {', '.join(GRIDS)}")
    torch.backends.cuda.matmul.allow_tf32 = True  # on a GPU: TF32 matrix products, as HF's Trainer --tf32

    train, held_out = load_hh_split(None, args.train_pairs, args.eval_pairs, seed=0)
    fit, validation = train_eval_split(train, seed=1, eval_size=args.validation_pairs)
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    summary = {"machine": f"{platform.node()} {platform.machine()}, {gpu}, torch {torch.__version__}",
               "command": " ".join(["python", *sys.argv]), "data": "hh_rlhf/helpful_base_pairs.jsonl",
               "train_pairs": len(train), "fit_pairs": len(fit), "validation_pairs": len(validation),
               "eval_pairs": len(held_out), "max_length": args.max_length, "models": [], "search": []}
    out, started = Path(args.out), time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)

    def save():
        summary["wall_time_s"] = time.perf_counter() - started
        write_json(out / "reward_models.json", summary)
        write_atomic(out / "reward_models.md", markdown(summary))

    for backbone in names:
        model, lora, grid = GRIDS[backbone]
        tried = []
        for settings in grid:
            cfg = RewardTrainConfig(batch_size=args.batch_size, **settings)
            print(f"== {candidate_name(backbone, settings)}: {len(fit)} pairs, {len(validation)} validation", flush=True)
            m = run_reward_model(model, fit, validation, cfg, lora, args.max_length)
            tried.append((m["heldout_pairwise_accuracy"], settings))
            summary["search"].append({"candidate": candidate_name(backbone, settings), "backbone": backbone,
                                      "config": settings, "validation_accuracy": m["heldout_pairwise_accuracy"],
                                      "train_pairs_per_s": m["train_pairs_per_s"], "train_time_s": m["train_time_s"]})
            print(f"   validation accuracy {m['heldout_pairwise_accuracy']:.4f}", flush=True)
            save()
        best_accuracy, best = max(tried, key=lambda t: t[0])  # the first of equals: the earlier (cheaper) one
        print(f"== {backbone}: chosen {best}, retrained on {len(train)} pairs", flush=True)
        saved = Path(args.save_dir) / backbone if args.save_dir else None
        final = run_reward_model(model, train, held_out, RewardTrainConfig(batch_size=args.batch_size, **best), lora,
                                 args.max_length, out=saved)
        final.update(name=backbone, validation_accuracy=best_accuracy, saved_to=str(saved) if saved else None)
        summary["models"].append(final)
        print(f"   held-out pairwise accuracy {final['heldout_pairwise_accuracy']:.4f}", flush=True)
        save()
