"""MRPC fine-tuning with SmolLM2-135M as a sequence classifier, full and LoRA (issue 19, item 3).

    .venv/bin/python benchmarks/mrpc_smollm2_classifier.py --seeds 3            # resumes and adds seeds
    .venv/bin/python benchmarks/mrpc_smollm2_classifier.py --seeds 1 --settings full

`restlm compare` of configs/compare_mrpc.yaml (validation split carved from train, dev reported) with
model.name=smollm2, once per setting: `full` (every weight, lr 2e-5) and `lora` (rank 16, lr 2e-4); the learning
rates were fixed before any run, not tuned on dev. Other flags (--methods, --set KEY=VALUE) pass to compare.
Writes benchmarks/results/mrpc_smollm2_classifier.{json,md} (restlm.presets.mrpc_backbones).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from restlm.presets import publish, run_compare

ROOT = Path(__file__).resolve().parent.parent
OUT = "benchmarks/runs/compare_mrpc_smollm2"
SETTINGS = {"full": ["--set", "train.learning_rate=2e-5"],
            "lora": ["--set", "train.learning_rate=2e-4", "--set", "model.lora_rank=16"]}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--methods", default="sft")
    parser.add_argument("--settings", default="full,lora")
    args, extra = parser.parse_known_args(argv)
    settings = args.settings.split(",")
    if unknown := [s for s in settings if s not in SETTINGS]:
        parser.error(f"--settings: {', '.join(SETTINGS)}, not {', '.join(unknown)}")  # one line, exit 2
    os.chdir(ROOT)  # the config's paths are relative to the checkout
    for name in settings:
        code = run_compare("configs/compare_mrpc.yaml", f"{OUT}/{name}", args.methods, args.seeds,
                           ["--set", "model.name=smollm2", *SETTINGS[name], *extra],
                           records=f"benchmarks/results/mrpc_smollm2_classifier_records/{name}")
        if code != 0:
            return code
    from restlm.presets.mrpc_backbones import markdown, summarise

    summary = summarise({name: Path(OUT) / name for name in SETTINGS},
                        minilm=Path("benchmarks/results/mrpc_variants.json"))
    publish("benchmarks/results/mrpc_smollm2_classifier", summary, markdown(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
