"""ReST, ReST-EM, GRPO, RLOO and PPO from one SFT start on generated arithmetic, through `restlm compare`, and BC
matched (the references alone for as many optimiser steps as ReST's Improve steps) as the control of ReST's gain.

    .venv/bin/python benchmarks/arithmetic_smollm2.py              # 3 seeds; about 80 min a seed on a free 2-core CPU
    .venv/bin/python benchmarks/arithmetic_smollm2.py --seeds 1    # what a shorter session can finish

A preset: the task and every method's settings are configs/compare_arithmetic.yaml; the online methods
spend the sampled tokens ReST spent on the same seed. The comparison resumes when rerun (and adds seeds).
Writes benchmarks/results/arithmetic_smollm2.{json,md} (restlm.presets.arithmetic: strict and lenient
held-out exact answers, paired intervals against SFT, the issue's two goals).
"""
from __future__ import annotations

import sys
from pathlib import Path

from restlm.presets import compare_benchmark
from restlm.presets.arithmetic import markdown, summarise

METHODS = "sft,rest,rest_em,ppo,grpo,rloo,bc_matched"  # bc_matched: the control added in session 18


def main(argv: list[str]) -> int:
    return compare_benchmark(argv, __doc__, Path(__file__).resolve().parent.parent, "configs/compare_arithmetic.yaml",
                             "benchmarks/runs/compare_arithmetic", METHODS, 3,
                             "benchmarks/results/arithmetic_smollm2", summarise, markdown,
                             records="benchmarks/results/arithmetic_smollm2_records")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
