"""Ablations of ReST on MRPC: why does (or doesn't) ReST beat fine-tuning?

    .venv/bin/python benchmarks/mrpc_ablation.py --from-run benchmarks/runs/mrpc_minilm --seed 0 \
        --variant per_label:rest.threshold_per_output=true --variant all_originals:rest.original_data=all

Each variant starts from the fine-tuned (G0I0) checkpoint of a finished benchmark run's seed, runs one
ReST trajectory (the run's N, G, I unless overridden) with the ReST API, and the dev accuracy and the
label mix of the kept rows are written to benchmarks/results/mrpc_minilm_ablations.{json,md}.
The work is restlm.presets.mrpc_ablation.
"""
from __future__ import annotations

import argparse
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from-run", required=True, help="a benchmark run directory with checkpoints/seedS/sft")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variant", action="append", required=True, metavar="NAME:KEY=VALUE[,KEY=VALUE]")
    parser.add_argument("--out", default=str(HERE / "results" / "mrpc_minilm_ablations"))
    parser.add_argument("--work-dir", default=str(HERE / "runs" / "ablations"))
    args = parser.parse_args()
    # imported after parsing, so that --help answers without loading torch and transformers
    from restlm.presets import mrpc_ablation

    mrpc_ablation.main(args)


if __name__ == "__main__":
    main()
