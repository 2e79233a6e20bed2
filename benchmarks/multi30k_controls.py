"""ReST on Multi30k against BC matched to its optimiser steps and BC trained to convergence (issue 19).

    .venv/bin/python benchmarks/multi30k_controls.py                    # 3 seeds: ReST, BC matched, both starts
    .venv/bin/python benchmarks/multi30k_controls.py --seeds 1 --extra rest_em,rest_gold,rest_bvmpo
    .venv/bin/python benchmarks/multi30k_controls.py --seeds 1 --starts one_epoch --out /tmp/m30k  # seed 0 alone,
                                                    # from the kept records, while the run above goes on

Two `restlm compare` runs of configs/compare_multi30k.yaml: from BC fine-tuned one epoch (`one_epoch/`) and from
BC fine-tuned to its best dev epoch (`converged/`: train.patience, train.epochs the most). Both resume when rerun
and add seeds; every finished method run is also kept, without weights, in
benchmarks/results/multi30k_controls_records/START (committed), and carried back from there when benchmarks/runs
is lost (a new machine). Writes benchmarks/results/multi30k_controls.{json,md} (presets.multi30k_controls), and the
same rows as the `controls` key of benchmarks/results/multi30k_smollm2.json.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from restlm.presets import run_compare

ROOT = Path(__file__).resolve().parent.parent
OUT = "benchmarks/runs/multi30k_controls"
RECORDS = "benchmarks/results/multi30k_controls_records"  # finished method records, committed: carried back
CONVERGED = ["--set", "train.patience=2", "--set", "train.epochs=8"]  # at most 8 epochs; stop after 2 without a gain


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--extra", default="", help="more methods from the one-epoch start (rest_em,rest_gold,...)")
    parser.add_argument("--starts", default="one_epoch,converged")
    parser.add_argument("--out", default=OUT, help="the compare directories' parent (another one publishes the "
                        "finished seeds from the kept records while a run goes on in the default one)")
    args, extra = parser.parse_known_args(argv)  # other flags (--bootstrap, --set KEY=VALUE) pass to compare
    starts = args.starts.split(",")
    if not set(starts) <= {"one_epoch", "converged"}:
        parser.error(f"--starts: one_epoch and/or converged, not {args.starts!r}")  # one line, exit 2
    os.chdir(ROOT)  # the config's paths are relative to the checkout
    for start in starts:
        methods = "sft,rest,bc_matched" + (f",{args.extra}" if args.extra and start == "one_epoch" else "")
        code = run_compare("configs/compare_multi30k.yaml", f"{args.out}/{start}", methods, args.seeds,
                           [*(CONVERGED if start == "converged" else []), *extra], records=f"{RECORDS}/{start}")
        if code != 0:
            return code
    from restlm.presets.multi30k_controls import publish

    publish(args.out, "benchmarks/results/multi30k_controls", table="benchmarks/results/multi30k_smollm2")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
