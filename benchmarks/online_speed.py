"""GRPO's token passes (scoring, optimising): bf16 autocast and output-position logits against float32 over every position.

    .venv/bin/python benchmarks/online_speed.py                 # a few minutes on a free 2-core machine
    .venv/bin/python benchmarks/online_speed.py --prompts 2 --rounds 1   # a smoke run

Writes benchmarks/results/online_speed.{json,md} (restlm.presets.online_speed).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/compare_arithmetic.yaml", help="the task and its grpo section")
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "online_speed"))
    args = parser.parse_args()
    os.chdir(ROOT)  # the config's paths are relative to the checkout
    # imported after parsing: --help stays instant
    from restlm.presets import publish
    from restlm.presets.online_speed import markdown, run

    summary = run(args.config, args.prompts, args.rounds, " ".join(["python", *sys.argv]))
    publish(args.out, summary, markdown(summary))


if __name__ == "__main__":
    main()
