"""Reward models on HH-RLHF helpful-base with honest model selection: a small grid per backbone,
chosen on a validation split of the training pairs, then retrained on all of them and scored once
on the held-out pairs (the same 200 as benchmarks/reward_models.py).

    .venv/bin/python benchmarks/reward_model_search.py --out benchmarks/results/reward_models_search
    .venv/bin/python benchmarks/reward_model_search.py --backbones minilm --train-pairs 64 --eval-pairs 32 \
        --validation-pairs 16 --out /tmp/rms_smoke          # a smoke run

Writes OUT/reward_models.json (the `models` list of benchmarks/reward_models.py: each backbone's chosen
candidate, with `name`, `heldout_pairwise_accuracy`, `train_pairs_per_s`; plus `search`, every
candidate's validation accuracy) and OUT/reward_models.md; with --save-dir, each chosen model too. Slow on a CPU (the SmolLM2 grid takes
hours there): meant for a GPU; `--backbones minilm` fits a CPU session.
"""
from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import torch

from restlm.data.splits import train_eval_split
from restlm.reward_models.bradley_terry import RewardTrainConfig
from restlm.reward_models.fitting import load_hh_split, run_reward_model
from restlm.runs import write_atomic, write_json

HERE = Path(__file__).resolve().parent
LORA = {"r": 16, "alpha": 32, "dropout": 0.0}
# backbone -> (model, LoRA options, candidate training settings); LoRA trains few weights: larger steps
GRIDS = {
    "minilm": ("minilm", None, [{"learning_rate": lr, "epochs": e} for lr in (3e-5, 1e-4) for e in (1, 3)]),
    "smollm2-lora": ("smollm2", LORA, [{"learning_rate": lr, "epochs": e} for lr in (2e-4, 5e-4) for e in (1, 2)]),
    "smollm2": ("smollm2", None, [{"learning_rate": lr, "epochs": e} for lr in (1e-5, 3e-5) for e in (1, 2)]),
}


def candidate_name(backbone: str, settings: dict) -> str:
    return f"{backbone} lr={settings['learning_rate']:g} epochs={settings['epochs']}"


def markdown(summary: dict) -> str:
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", default=",".join(GRIDS), help=f"comma-separated, of: {', '.join(GRIDS)}")
    parser.add_argument("--train-pairs", type=int, default=1800)
    parser.add_argument("--eval-pairs", type=int, default=200, help="held-out pairs, scored once per backbone")
    parser.add_argument("--validation-pairs", type=int, default=200, help="taken from the training pairs")
    parser.add_argument("--max-length", type=int, default=256, help="tokens per (prompt, response)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--out", default=str(HERE / "results" / "reward_models_search"))
    parser.add_argument("--save-dir", help="save each backbone's chosen model, retrained, to SAVE_DIR/BACKBONE "
                        "(HF format, for `reward_models.py --combine`)")
    args = parser.parse_args(argv)
    names = [n for n in args.backbones.split(",") if n]
    if unknown := [n for n in names if n not in GRIDS]:
        parser.error(f"unknown backbone(s) {unknown}; choose from {', '.join(GRIDS)}")
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


if __name__ == "__main__":
    main()
