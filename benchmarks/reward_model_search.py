"""Reward models on HH-RLHF helpful-base with honest model selection: a small grid per backbone,
chosen on a validation split of the training pairs, then retrained on all of them and scored once
on the held-out pairs (the same 200 as benchmarks/reward_models.py).

    .venv/bin/python benchmarks/reward_model_search.py --out benchmarks/results/reward_models_search
    .venv/bin/python benchmarks/reward_model_search.py --backbones minilm --train-pairs 64 --eval-pairs 32 \
        --validation-pairs 16 --out /tmp/rms_smoke          # a smoke run

Writes OUT/reward_models.json (the `models` list of benchmarks/reward_models.py: each backbone's chosen
candidate, with `name`, `heldout_pairwise_accuracy`, `train_pairs_per_s`; plus `search`, every
candidate's validation accuracy) and OUT/reward_models.md; with --save-dir, each chosen model too. Slow on a CPU (the SmolLM2 grid takes
hours there): meant for a GPU; `--backbones minilm` fits a CPU session. The grids and the work are
restlm.presets.reward_model_search.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from restlm.presets import reward_model_search
from restlm.presets.reward_model_search import GRIDS

HERE = Path(__file__).resolve().parent


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
    reward_model_search.main(parser.parse_args(argv), usage_error=parser.error)


if __name__ == "__main__":
    main()
