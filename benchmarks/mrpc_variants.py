"""ReST on MRPC (MiniLM) against fine-tuning, the Table 2 grid and the variants that say why, through `restlm compare`.

    .venv/bin/python benchmarks/mrpc_variants.py --seeds 5     # resumes and adds seeds; commit after each seed
    .venv/bin/python benchmarks/mrpc_variants.py --seeds 1 --methods sft,rest    # the smallest slice

A preset: the task, ReST's settings and the variants are configs/compare_mrpc.yaml. Every method starts from the
same fine-tuned start of its seed, chooses its step on a validation split and is scored on dev. Writes
benchmarks/results/mrpc_variants.{json,md} (restlm.presets.mrpc_variants).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from restlm import cli
from restlm.presets import publish
from restlm.presets.mrpc_variants import markdown, summarise

ROOT = Path(__file__).resolve().parent.parent
OUT = "benchmarks/runs/compare_mrpc"
METHODS = "sft,rest,rest_n1000,rest_correct,rest_sampled,rest_balanced,rest_all_originals,rest_slow_decay"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--methods", default=METHODS)
    args, extra = parser.parse_known_args(argv)  # other flags (--bootstrap, --set KEY=VALUE) pass to compare
    os.chdir(ROOT)  # the config's paths are relative to the checkout
    code = cli.main(["compare", "--task", "configs/compare_mrpc.yaml", "--methods", args.methods,
                     "--seeds", str(args.seeds), "--eval-samples", "1", "--out", OUT, *extra])
    if code == 0:
        summary = summarise(OUT)
        publish("benchmarks/results/mrpc_variants", summary, markdown(summary))
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
