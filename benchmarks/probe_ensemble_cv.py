"""Nested cross-validation of an ensemble of linear probes, from the features their benchmark run cached.

    .venv/bin/python benchmarks/probe_ensemble_cv.py minilm-probe+smollm2-probe

NAME is an ensemble in benchmarks/results/reward_models.json made by `reward_models.py --combine` of
probes saved with `--save-dir` (each member's features cached as MEMBER.features.npz beside its folder).
Over all 2000 pairs, in each of 5 outer folds, every member's layer and L2 strength are chosen and
fitted on the other folds alone, and the members combined as the saved ensemble combines them: a
second estimate of the ensemble's accuracy beside its one held-out figure, with about a third of its
standard error. Writes it into NAME's entry as `nested_cv` and rewrites reward_models.{json,md}.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from reward_models import NESTED_FOLDS, markdown

from restlm.atomic_files import write_atomic, write_json
from restlm.reward_models.probe_runs import nested_cv

HERE = Path(__file__).resolve().parent


def member_features(path: Path) -> tuple[dict, dict]:
    """(chosen, rejected) features by layer from the cache beside a saved probe."""
    cache = Path(str(path) + ".features.npz")
    if not cache.is_file():
        raise SystemExit(f"{cache}: no cached features; save the probe with reward_models.py --save-dir first")
    saved = np.load(cache)
    layers = [int(k.removeprefix("layer_")) for k in saved.files if k.startswith("layer_")]
    n = len(saved[f"layer_{layers[0]}"]) // 2
    return ({k: saved[f"layer_{k}"][:n] for k in layers}, {k: saved[f"layer_{k}"][n:] for k in layers})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", help="an ensemble of probes in OUT/reward_models.json")
    parser.add_argument("--out", default=str(HERE / "results"), help="folder of reward_models.json and .md")
    parser.add_argument("--folds", type=int, default=5, help="inner folds choosing each member (as the probes')")
    args = parser.parse_args(argv)
    out = Path(args.out)
    summary = json.loads((out / "reward_models.json").read_text())
    entry = next((m for m in summary["models"] if m["name"] == args.name and m.get("kind") == "ensemble"), None)
    if entry is None or "members" not in entry:
        raise SystemExit(f"{out / 'reward_models.json'}: no ensemble named {args.name!r} with saved members")
    members = [member_features(Path(m["path"])) for m in entry["members"]]
    if len({len(next(iter(c.values()))) for c, _ in members}) != 1:
        raise SystemExit(f"{args.name}: its members' cached features cover different numbers of pairs")
    start = time.perf_counter()
    entry["nested_cv"] = {**nested_cv(members, NESTED_FOLDS, args.folds, entry.get("calibration_pairs", 200)),
                          "seconds": time.perf_counter() - start}
    print(json.dumps(entry["nested_cv"]))
    write_json(out / "reward_models.json", summary)
    write_atomic(out / "reward_models.md", markdown(summary))


if __name__ == "__main__":
    main()
