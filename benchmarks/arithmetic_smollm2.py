"""ReST, ReST-EM, GRPO, RLOO and PPO from one SFT start on generated arithmetic, through `restlm compare`.

    .venv/bin/python benchmarks/arithmetic_smollm2.py              # 3 seeds; about 80 min a seed on a free 2-core CPU
    .venv/bin/python benchmarks/arithmetic_smollm2.py --seeds 1    # what a shorter session can finish

A preset: the task and every method's settings are configs/compare_arithmetic.yaml; the online methods
spend the sampled tokens ReST spent on the same seed. The comparison resumes when rerun (and adds seeds).
Writes benchmarks/results/arithmetic_smollm2.{json,md} (restlm.presets.arithmetic: strict and lenient
held-out exact answers, paired intervals against SFT, the issue's two goals).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from restlm import cli
from restlm.presets import publish
from restlm.presets.arithmetic import markdown, summarise

ROOT = Path(__file__).resolve().parent.parent
OUT = "benchmarks/runs/compare_arithmetic"
METHODS = "sft,rest,rest_em,ppo,grpo,rloo"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--methods", default=METHODS)
    args, extra = parser.parse_known_args(argv)  # other flags (--bootstrap, --set KEY=VALUE) pass to compare
    os.chdir(ROOT)  # the config's paths are relative to the checkout
    code = cli.main(["compare", "--task", "configs/compare_arithmetic.yaml", "--methods", args.methods,
                     "--seeds", str(args.seeds), "--eval-samples", "1", "--out", OUT, *extra])
    if code == 0:
        summary = summarise(OUT)
        publish("benchmarks/results/arithmetic_smollm2", summary, markdown(summary))
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
