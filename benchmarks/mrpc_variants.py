"""ReST on MRPC (MiniLM) against fine-tuning, the Table 2 grid and the variants that say why, through `restlm compare`.

    .venv/bin/python benchmarks/mrpc_variants.py --seeds 5     # resumes and adds seeds; commit after each seed
    .venv/bin/python benchmarks/mrpc_variants.py --seeds 1 --methods sft,rest    # the smallest slice

A preset: the task, ReST's settings and the variants are configs/compare_mrpc.yaml. Every method starts from the
same fine-tuned start of its seed, chooses its step on a validation split and is scored on dev. Writes
benchmarks/results/mrpc_variants.{json,md} (restlm.presets.mrpc_variants).
"""
from __future__ import annotations

import sys
from pathlib import Path

from restlm.presets import compare_benchmark
from restlm.presets.mrpc_variants import markdown, summarise

METHODS = "sft,rest,rest_n1000,rest_correct,rest_sampled,rest_balanced,rest_all_originals,rest_slow_decay"


def main(argv: list[str]) -> int:
    return compare_benchmark(argv, __doc__, Path(__file__).resolve().parent.parent, "configs/compare_mrpc.yaml",
                             "benchmarks/runs/compare_mrpc", METHODS, 5,
                             "benchmarks/results/mrpc_variants", summarise, markdown,
                             records="benchmarks/results/mrpc_variants_records")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
