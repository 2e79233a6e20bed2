"""Multi30k benchmark: the rows of the ReST paper's Table 1 with SmolLM2-135M-Instruct, German to English.

    .venv/bin/python benchmarks/multi30k_smollm2.py            # about an hour on 2 CPU cores

Step 1. the BC trajectory with `Experiment`: pretrained, supervised fine-tuning on a training subset
(G0I0), then two Grow steps of three Improve steps (resumable: run the command again).
Step 2. GOLD and BVMPO: one Grow step and one Improve step each, from the same fine-tuned checkpoint.
Step 3. Grow sampling speed against a plain batch-by-batch `model.generate` loop over the same inputs.
Writes benchmarks/results/multi30k_smollm2.{json,md}. The work is restlm.presets.multi30k.

Row labels follow the paper: with a first threshold of 0 (keep every sample), our first Improve step
is the paper's I0 ("ReST G1I0"), so `I` = our Improve step - 1; `improve_step` keeps ours.
"""
from __future__ import annotations

import argparse
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "configs" / "multi30k_smollm2_benchmark.yaml"))
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--run-dir", default=str(HERE / "runs" / "multi30k_smollm2"))
    parser.add_argument("--out", default=str(HERE / "results" / "multi30k_smollm2"))
    parser.add_argument("--losses", default="gold,bvmpo", help="Improve losses run at G1 besides BC (comma-separated; '' for none)")
    parser.add_argument("--note", action="append", default=[])
    args = parser.parse_args()
    # imported after parsing, so that --help answers without loading torch and transformers
    from restlm.presets import multi30k

    multi30k.main(args, root=ROOT)


if __name__ == "__main__":
    main()
