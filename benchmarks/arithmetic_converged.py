"""Arithmetic from a converged SFT start: does ReST add to training longer? (the control of arithmetic_smollm2.py)

    .venv/bin/python benchmarks/arithmetic_converged.py             # 3 seeds
    .venv/bin/python benchmarks/arithmetic_converged.py --seeds 1

The benchmark arithmetic_smollm2.py starts every method from one epoch of SFT, and its BC-matched control
showed ReST's gain there is the references trained longer. Here the start is SFT to its best dev epoch (at most
8, patience 2: `train.patience`), and ReST, ReST-EM, BC matched and GRPO go on from it at ReST's token budget.
The rule (NOTES, session 18): ReST − BC matched, strict held-out, paired 95% interval over seeds and problems.
Writes benchmarks/results/arithmetic_converged.{json,md}; resumes when rerun.
"""
from __future__ import annotations

import sys
from pathlib import Path

from restlm.presets import compare_benchmark
from restlm.presets.arithmetic import markdown, summarise

METHODS = "sft,rest,rest_em,bc_matched,grpo"
CONVERGED = ["--set", "train.epochs=8", "--set", "train.patience=2"]


def main(argv: list[str]) -> int:
    return compare_benchmark([*argv, *CONVERGED], __doc__, Path(__file__).resolve().parent.parent,
                             "configs/compare_arithmetic.yaml", "benchmarks/runs/compare_arithmetic_converged", METHODS,
                             3, "benchmarks/results/arithmetic_converged", summarise, markdown,
                             records="benchmarks/results/arithmetic_converged_records")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
