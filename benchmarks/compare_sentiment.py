"""ReST against SFT, DPO and PPO on positive movie-review continuations, through `restlm compare`.

    .venv/bin/python benchmarks/compare_sentiment.py     # about 80 min on a free 2-core machine

A preset: the task and every method's settings are configs/compare_sentiment.yaml (those of the
sentiment task of benchmarks/results/rest_vs_ppo.json); this script runs the comparison (it resumes
when rerun), then writes benchmarks/results/compare_sentiment.{json,md}: compare.json with, per
method, the figures recorded in rest_vs_ppo.json beside it.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

from restlm import cli
from restlm.runs import write_atomic, write_json

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
COMMAND = ["compare", "--task", "configs/compare_sentiment.yaml", "--methods", "sft,rest,dpo,ppo", "--seeds", "1",
           "--eval-samples", "1", "--out", "benchmarks/runs/compare_sentiment"]
COMPARED = ("proxy", "gold", "kl", "distinct2", "sampled_tokens", "wall_time_s")


def recorded() -> dict:
    """The sentiment task's method records of rest_vs_ppo.json (the run of benchmarks/rest_vs_ppo.py)."""
    tasks = json.loads((RESULTS / "rest_vs_ppo.json").read_text())["tasks"]
    task = next(t for t in tasks if t["name"] == "sentiment")
    return {m["method"]: {k: m.get(k) for k in (*COMPARED, "chosen_step")} for m in task["methods"]}


def cell(value) -> str:
    return "—" if value is None else f"{value:.4f}" if isinstance(value, float) and abs(value) < 100 else f"{value:.0f}"


def main(argv: list[str]) -> int:
    os.chdir(ROOT)  # the config's paths are relative to the checkout
    code = cli.main([*COMMAND, *argv])  # extra flags (--bootstrap, --carry DIR) pass through
    if code:
        return code
    out = ROOT / COMMAND[COMMAND.index("--out") + 1]
    summary, before = json.loads((out / "compare.json").read_text()), recorded()
    for method in summary["methods"]:
        method["recorded_in_rest_vs_ppo"] = before.get(method["method"])
    summary["notes"] = ["recorded_in_rest_vs_ppo: the same method, task and settings as run by "
                        "benchmarks/rest_vs_ppo.py (DPO's pairs there came from ReST's first Grow step; here from "
                        "the start policy's own samples, drawn alike)."]
    write_json(RESULTS / "compare_sentiment.json", summary)
    rows = ["| method | " + " | ".join(f"{k} now / then" for k in COMPARED) + " |",
            "|---" * (len(COMPARED) + 1) + "|"]
    for method in summary["methods"]:
        then = method["recorded_in_rest_vs_ppo"] or {}
        rows.append(f"| {method['method']} | " + " | ".join(f"{cell(method[k])} / {cell(then.get(k))}"
                                                         for k in COMPARED) + " |")
    shutil.copyfile(out / "proxy_vs_gold.png", RESULTS / "compare_sentiment.png")
    text = (out / "compare.md").read_text().replace("(proxy_vs_gold.png)", "(compare_sentiment.png)")
    write_atomic(RESULTS / "compare_sentiment.md", text + "\n## Against the recorded run (rest_vs_ppo.json)\n\n"
                 + "\n".join(rows) + "\n\n" + summary["notes"][0] + "\n")
    print(f"written: {RESULTS / 'compare_sentiment.json'}, {RESULTS / 'compare_sentiment.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
