"""Bradley-Terry reward models on HH-RLHF helpful-base: MiniLM (cross-encoder) and SmolLM2 + LoRA.

    .venv/bin/python benchmarks/reward_models.py                      # 1800 train / 200 held-out pairs, 1 epoch
    .venv/bin/python benchmarks/reward_models.py --train-pairs 32 --eval-pairs 32 --models minilm   # a smoke run
    .venv/bin/python benchmarks/reward_models.py --models minilm-x3 --merge   # add the 3-seed MiniLM ensemble
    .venv/bin/python benchmarks/reward_models.py --models minilm-probe,smollm2-probe --merge   # linear probes
    .venv/bin/python benchmarks/reward_models.py --models '' --merge \
        --combine minilm+smollm2-lora=RUNS/minilm-x2/member_0,RUNS/smollm2-lora   # saved models as one ensemble

The 2000 pairs are split once (seed 0): `--eval-pairs` held out, the first `--train-pairs` of the
rest trained on. Each model reports held-out pairwise accuracy before and after training and its
throughput; results go to benchmarks/results/reward_models.{json,md}, rewritten after each model.
The presets and the work are restlm.presets.reward_models.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from restlm.presets import reward_models
from restlm.presets.reward_models import NESTED_FOLDS, PRESETS, PROBES, markdown
from restlm.reward_models.fitting import HH_PAIRS

HERE = Path(__file__).resolve().parent
__all__ = ["NESTED_FOLDS", "main", "markdown"]  # probe_ensemble_cv.py imports the first and the last from here


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-pairs", type=int, default=1800, help="training pairs (at most 2000 - eval pairs)")
    parser.add_argument("--eval-pairs", type=int, default=200, help="held-out pairs")
    parser.add_argument("--epochs", type=int, default=1, help="passes over the training pairs")
    parser.add_argument("--models", default=",".join(PRESETS), help=f"comma-separated, of: {', '.join([*PRESETS, *PROBES])}")
    parser.add_argument("--max-length", type=int, default=256, help="tokens per (prompt, response)")
    parser.add_argument("--data", default=None, help=f"preference JSONL (default {HH_PAIRS} under the data root)")
    parser.add_argument("--max-train-pairs", action="append", default=[], metavar="MODEL=N",
                        help="train MODEL on only the first N training pairs (a slow model in a short session)")
    parser.add_argument("--combine", action="append", default=[], metavar="NAME=PATH,PATH",
                        help="also measure saved reward models (any backbones) as one ensemble named NAME")
    parser.add_argument("--save-dir", help="also save each trained reward model under this folder")
    parser.add_argument("--out", default=str(HERE / "results"), help="folder of reward_models.json and .md")
    parser.add_argument("--merge", action="store_true",
                        help="keep the other models of an existing OUT/reward_models.json (same split and length)")
    reward_models.main(parser.parse_args(argv), usage_error=parser.error)


if __name__ == "__main__":
    main()
