"""Supervised training in bf16 autocast against float32 (issue: fast generation, item 3).

    .venv/bin/python benchmarks/training_speed.py              # about 8 min on a free 2-core machine
    .venv/bin/python benchmarks/training_speed.py --pairs 16 --rounds 1   # a smoke run

Writes benchmarks/results/training_speed.{json,md} (restlm.presets.training_speed).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=64, help="Multi30k pairs (and twice as many MRPC pairs) per step")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=str(HERE / "results" / "training_speed"))
    args = parser.parse_args()
    # imported after parsing: --help stays instant
    from restlm.presets import publish
    from restlm.presets.training_speed import markdown, run

    summary = run(args.pairs, args.rounds, " ".join(["python", *sys.argv]))
    publish(args.out, summary, markdown(summary))


if __name__ == "__main__":
    main()
