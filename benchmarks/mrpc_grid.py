"""Benchmark: the reference's whole Table 2 grid with MiniLM on MRPC, over seeds.

    .venv/bin/python benchmarks/mrpc_grid.py [--seeds 5] [--run-dir benchmarks/runs/mrpc_minilm]

Runs (or resumes, or extends to more seeds) the experiment of configs/mrpc_minilm_benchmark.yaml,
then writes benchmarks/results/mrpc_minilm.json and mrpc_minilm.md: per (N, G, I) the seed mean,
std and 95% CI of dev accuracy, F1, the paired difference against G0I0 of the same seed, and wall
time; at the top the machine, the command, training and inference throughput, peak memory.
The work is restlm.presets.mrpc_grid.
"""
from __future__ import annotations

import argparse
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--config", default=str(HERE.parent / "configs" / "mrpc_minilm_benchmark.yaml"))
    parser.add_argument("--run-dir", default=str(HERE / "runs" / "mrpc_minilm"))
    parser.add_argument("--out", default=str(HERE / "results" / "mrpc_minilm"))
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--peak-memory-mb", type=float, help="for runs older than per-stage memory records: VmHWM measured outside")
    parser.add_argument("--run-command", help="with --summarise-only: the command that produced the run")
    parser.add_argument("--note", action="append", default=[], help="a line for the results' notes (repeatable)")
    parser.add_argument("--summarise-only", action="store_true",
                        help="summarise the finished stages of --run-dir without running anything (a run still going may be read)")
    args = parser.parse_args()
    # imported after parsing, so that --help answers without loading torch and transformers
    from restlm.presets import mrpc_grid

    mrpc_grid.main(args)


if __name__ == "__main__":
    main()
