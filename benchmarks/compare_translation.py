"""ReST against SFT, DPO, PPO and GRPO on Multi30k De->En (proxy chrF, gold BLEU), through `restlm compare`.

    .venv/bin/python benchmarks/compare_translation.py    # about 90 min on a free 2-core machine

A preset: the task and every method's settings are configs/compare_translation.yaml (those of the
translation task of benchmarks/results/rest_vs_ppo.json, but held out on test_2016_flickr rather
than on Multi30k val, and PPO on all 200 training sources); the comparison resumes when rerun.
Writes benchmarks/results/compare_translation.{json,md,png}.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from restlm.presets import run_compare
from restlm.compare.publish import publish

ROOT = Path(__file__).resolve().parent.parent
OUT = "benchmarks/runs/compare_translation"
TASK, METHODS = "configs/compare_translation.yaml", "sft,rest,dpo,ppo,grpo"


def main(argv: list[str]) -> int:
    os.chdir(ROOT)  # the config's paths are relative to the checkout
    code = run_compare(TASK, OUT, METHODS, 1, argv)  # extra flags pass through (a later --seeds 3 wins)
    if code == 0:
        publish(OUT, "benchmarks/results/compare_translation")
        print("written: benchmarks/results/compare_translation.{json,md,png}")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
