"""ReST against SFT, DPO, PPO and GRPO on positive movie-review continuations, through `restlm compare`.

    .venv/bin/python benchmarks/compare_sentiment.py     # about 70 min on a free 2-core machine

A preset: the task and every method's settings are configs/compare_sentiment.yaml (those of the
sentiment task of benchmarks/results/rest_vs_ppo.json); the comparison resumes when rerun. Writes
benchmarks/results/compare_sentiment.{json,md,png}, each method beside its rest_vs_ppo.json figures.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from restlm.presets import run_compare
from restlm.compare.publish import COMPARED, publish

ROOT = Path(__file__).resolve().parent.parent
OUT = "benchmarks/runs/compare_sentiment"
TASK, METHODS = "configs/compare_sentiment.yaml", "sft,rest,dpo,ppo,grpo"
NOTE = ("'then': the same method, task and settings run by the former benchmarks/rest_vs_ppo.py (session 6). DPO's "
        "pairs there came from ReST's first Grow step; here from the start policy's own samples, drawn alike.")


def recorded() -> dict:
    tasks = json.loads((ROOT / "benchmarks/results/rest_vs_ppo.json").read_text())["tasks"]
    methods = next(t for t in tasks if t["name"] == "sentiment")["methods"]
    return {m["method"]: {k: m.get(k) for k in (*COMPARED, "chosen_step")} for m in methods}


def main(argv: list[str]) -> int:
    os.chdir(ROOT)  # the config's paths are relative to the checkout
    code = run_compare(TASK, OUT, METHODS, 1, argv)  # extra flags (--bootstrap, --carry DIR) pass through
    if code == 0:
        publish(OUT, "benchmarks/results/compare_sentiment", recorded(), "rest_vs_ppo.json", NOTE)
        print("written: benchmarks/results/compare_sentiment.{json,md,png}")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
