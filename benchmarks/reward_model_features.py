"""Which frozen features make a linear-probe reward model on HH-RLHF helpful-base, by nested cross-validation.

    .venv/bin/python benchmarks/reward_model_features.py      # about 40 min of forward passes, then the fits
    .venv/bin/python benchmarks/reward_model_features.py --procedures length,"minilm last"   # some rows only

MiniLM and SmolLM2-135M-Instruct each run forward once over the 2000 pairs' 4000 (prompt, response) rows at
512 tokens (features cached in benchmarks/runs/reward_model_features/); each procedure of
restlm.presets.reward_model_features (the head's own input, response-mean states, SmolLM2's log-probability of
the response, its length, both backbones as an ensemble) is then scored by 5x5 nested cross-validation over all
the pairs. Writes benchmarks/results/reward_model_features.{json,md}; the headline row was fixed before any run.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from restlm.atomic_files import write_atomic, write_json
from restlm.presets.reward_model_features import PROCEDURES, markdown, run

ROOT = Path(__file__).resolve().parent.parent


def chosen_procedures(names: str | None) -> list[str]:
    """The rows --procedures names (every one without it); ValueError naming any unknown one."""
    procedures = list(PROCEDURES) if names is None else [p.strip() for p in names.split(",") if p.strip()]
    if unknown := [p for p in procedures if p not in PROCEDURES]:
        raise ValueError(f"--procedures: unknown {', '.join(map(repr, unknown))}; known: {', '.join(PROCEDURES)}")
    return procedures


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--procedures", default=None, help="comma-separated rows to run (default: every one)")
    parser.add_argument("--data", default=None, help="a preference-pairs JSONL (default HH-RLHF helpful-base)")
    parser.add_argument("--runs", default=str(ROOT / "benchmarks/runs/reward_model_features"), help="feature cache")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/reward_model_features"), help="results stem")
    args = parser.parse_args(argv)
    try:
        procedures = chosen_procedures(args.procedures)
    except ValueError as error:
        parser.error(str(error))  # one line, exit 2
    summary = run(Path(args.runs), args.data, procedures, " ".join(["python", "benchmarks/reward_model_features.py",
                                                                     *argv]))
    write_json(Path(args.out + ".json"), summary)
    write_atomic(Path(args.out + ".md"), markdown(summary))
    print(f"written: {args.out}.json, .md")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
