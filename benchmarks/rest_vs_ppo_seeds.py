"""Runs of benchmarks/rest_vs_ppo.py with different --seed, put together: each method's metrics averaged
over the seeds, and ReST's gold against each other method's, averaged over the seeds and bootstrapped over
the held-out prompts.

    cd benchmarks && ../.venv/bin/python rest_vs_ppo_seeds.py results/rest_vs_ppo.json \
        results/rest_vs_ppo_sentiment_seed1.json --tasks sentiment --out results/rest_vs_ppo_seeds

Every run of a task must have the same flags but --seed (the flags a carried method's run had are checked
when it was carried), the same held-out prompts and classifiers, and a seed of its own. A method counts when
every run has it. Writes OUT.json (the `tasks` list of rest_vs_ppo.json, each method's metrics the mean over
seeds, with `per_seed`) and OUT.md. Nothing is trained: the gold of each output is recomputed, to bootstrap it.
"""
from __future__ import annotations

import argparse
import sys
from argparse import Namespace
from pathlib import Path

import numpy as np
from rest_vs_ppo import DEFAULTS, METHODS, UNSIZED, differing_flags, read_results, task_records
from rest_vs_ppo_report import GOLD_NAMES, PROXY_NAMES, goal
from rest_vs_ppo_tasks import BENCHES, TASKS

from restlm.runs import write_atomic, write_json
from restlm.stats import paired_bootstrap

HERE = Path(__file__).resolve().parent
METRICS = ("proxy", "gold", "kl", "distinct2", "sampled_tokens", "wall_time_s")
MODELS = ("reward_model", "gold_model")  # compared by the path each was loaded from, not by the flag


def seed_records(files: list[str], runs: list[dict], name: str) -> list[dict]:
    """The task's record in every run, checked to differ in the seed alone."""
    records = []
    for file, run in zip(files, runs, strict=True):
        entry = next((t for t in task_records(run) if t["name"] == name), None)
        if entry is None:
            raise SystemExit(f"{file} has no {name} task")
        records.append({**entry, "file": file})
    first = records[0]
    for r in records[1:]:
        keys = (first["settings"].keys() | r["settings"].keys()) - set(UNSIZED) - set(MODELS) - {"seed"}
        if changed := sorted(differing_flags(first["settings"], r["settings"], keys)):
            raise SystemExit(f"{r['file']}: its {name} run differs from {first['file']}'s in more than the seed "
                             f"({', '.join(changed)})")
        for role in MODELS:
            if (first.get(role) or {}).get("path") != (r.get(role) or {}).get("path"):
                raise SystemExit(f"{r['file']}: its {name} run used another {role} than {first['file']}'s")
        if prompts(r) != prompts(first):
            raise SystemExit(f"{r['file']}: its {name} run has other held-out prompts than {first['file']}'s")
    seeds = [r["settings"]["seed"] for r in records]
    if len(set(seeds)) < len(seeds):
        raise SystemExit(f"{name}: the runs share a seed ({seeds}); give each run its own --seed")
    return records


def prompts(entry: dict) -> list[str]:
    return [e["prompt"] for m in entry["methods"][:1] for e in m["greedy_examples"]] + [str(entry["eval_prompts"])]


def averaged(records: list[dict]) -> list[dict]:
    """Each method every run has: the mean over seeds of each metric, and the values per seed."""
    by_seed = [{m["method"]: m for m in r["methods"]} for r in records]
    methods = []
    for method in METHODS:
        if all(method in runs for runs in by_seed):
            per_seed = {k: [runs[method][k] for runs in by_seed] for k in METRICS}
            methods.append({"method": method, **{k: float(np.mean(v)) for k, v in per_seed.items()},
                            "per_seed": per_seed})
    return methods


def bench_of(record: dict):
    """The task as its runs saw it, for the gold of any resample of the held-out outputs."""
    args = Namespace(**{**DEFAULTS, **record["settings"]})
    for role in MODELS:
        if path := (record.get(role) or {}).get("path"):
            if not (Path(path) / "config.json").exists():
                raise SystemExit(f"{record['file']}: the {role} it was scored with, {path}, is gone")
            setattr(args, role, path)
    return BENCHES[record["name"]](args, HERE / "runs" / "rest_vs_ppo")


def gold_difference(records: list[dict], methods: list[dict], rounds: int) -> dict:
    """ReST minus each other method of `averaged`: the mean over seeds of each seed's gold, on the same
    resampled prompts (translation's corpus BLEU recomputed on each resample, per seed); and the
    difference in each seed."""
    by_name = {m["method"]: m for m in methods}
    if "rest" not in by_name:
        return {}
    bench = bench_of(records[0])
    outputs = [{m["method"]: m["heldout_outputs"] for m in r["methods"]} for r in records]

    def seed_mean(method: str):
        golds = [bench.gold_of_rows(bench.heldout, run[method]) for run in outputs]  # each output scored once
        return lambda rows: float(np.mean([gold(rows) for gold in golds]))

    rest, rest_gold = seed_mean("rest"), by_name["rest"]["per_seed"]["gold"]
    return {f"rest-{other}": {**paired_bootstrap(rest, seed_mean(other), len(bench.heldout), rounds),
                              "per_seed": [a - b for a, b in zip(rest_gold, by_name[other]["per_seed"]["gold"],
                                                                 strict=True)]}
            for other in by_name if other != "rest"}


def markdown(summary: dict) -> str:
    lines = ["# ReST against PPO and DPO over several seeds, SmolLM2-135M-Instruct", "",
             f"Command: `{summary['command']}`", ""]
    for task in summary["tasks"]:
        lines += [f"## {task['name']}", "", f"Seeds {', '.join(map(str, task['seeds']))}, from "
                  + ", ".join(f"`{f}`" for f in task["files"]) + f"; {task['eval_prompts']} held-out prompts.", "",
                  f"| method | {PROXY_NAMES[task['name']]} | {GOLD_NAMES[task['name']]} (mean) | gold per seed | "
                  "KL to start | distinct-2 | sampled tokens | train time (s) |",
                  "|---|---:|---:|---|---:|---:|---:|---:|"]
        for m in task["methods"]:
            per = ", ".join(f"{g:.4f}" for g in m["per_seed"]["gold"])
            lines.append(f"| {m['method']} | {m['proxy']:.4f} | {m['gold']:.4f} | {per} | {m['kl']:.3f} | "
                         f"{m['distinct2']:.3f} | {m['sampled_tokens']:.0f} | {m['wall_time_s']:.0f} |")
        lines += ["", "Gold of ReST minus each other method, the mean over seeds (95% paired bootstrap over the "
                  "held-out prompts; per seed in brackets):", ""]
        for pair, d in task["gold_difference"].items():
            per = ", ".join(f"{x:+.4f}" for x in d["per_seed"])
            lines.append(f"- {pair.replace('-', ' - ')}: {d['diff']:+.4f} [{d['ci95'][0]:+.4f}, {d['ci95'][1]:+.4f}], "
                         f"{'beyond' if d['excludes_zero'] else 'within'} the noise of the prompt sample ({per})")
        lines.append("")
    g = summary["goal"]
    verdict = ", ".join(f"{t}: {'yes' if ok else 'no'}" for t, ok in g["rest_ahead_of_ppo_on_gold"].items())
    lines += [f"**Goal** (ReST ahead of PPO on the gold metric in both tasks, on the mean over seeds): "
              f"{verdict or 'not run'}. Met: {'yes' if g['met'] else 'no'}.", "",
              ("- The interval covers the noise of the held-out prompts with the seeds averaged; with few seeds it "
               "does not cover the spread between training runs: read the per-seed differences for that."),
              "- Every figure is the recorded one of rest_vs_ppo.py (greedy outputs, the step each method's dev "
              "proxy chose); see that report for the definitions."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("files", nargs="+", help="results JSON files of rest_vs_ppo.py, one per seed")
    p.add_argument("--tasks", default=",".join(TASKS), help=f"comma-separated, of {', '.join(TASKS)}")
    p.add_argument("--bootstrap", type=int, default=1000, help="resamples of the held-out prompts")
    p.add_argument("--out", default=str(HERE / "results" / "rest_vs_ppo_seeds"), help="writes OUT.json and OUT.md")
    args = p.parse_args(argv)
    if len(args.files) < 2:
        p.error("give at least two results files, one per seed")
    names = [t for t in args.tasks.split(",") if t]
    if unknown := set(names) - set(TASKS):
        p.error(f"unknown task(s) {sorted(unknown)}; choose from {', '.join(TASKS)}")
    runs = [read_results("rest_vs_ppo_seeds", f) for f in args.files]
    summary = {"command": " ".join(["python", *sys.argv]), "files": args.files, "tasks": []}
    for name in names:
        records = seed_records(args.files, runs, name)
        methods = averaged(records)
        summary["tasks"].append({"name": name, "seeds": [r["settings"]["seed"] for r in records], "files": args.files,
                                 "eval_prompts": records[0]["eval_prompts"], "methods": methods,
                                 "gold_difference": gold_difference(records, methods, args.bootstrap)})
    summary["goal"] = goal(summary)  # rest_vs_ppo's rule, on each method's gold averaged over the seeds
    out = Path(args.out)
    write_json(out.with_suffix(".json"), summary)
    write_atomic(out.with_suffix(".md"), markdown(summary))
    print(markdown(summary))


if __name__ == "__main__":
    main()
