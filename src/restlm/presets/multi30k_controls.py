"""benchmarks/multi30k_controls.py: ReST on Multi30k against the controls that tell its grown samples from
training longer (issue 19), through `restlm compare` twice on one task config:

  one_epoch/   the start is BC fine-tuned one epoch (row `bc`); ReST and its variants from it (`rest`, `rest_em`,
               `gold`, `bvmpo`); `bc_matched`: BC on the same pairs for as many optimiser steps as ReST's Improve steps
  converged/   the start is BC fine-tuned to its best dev epoch (`train.patience`; row `bc_converged`); ReST from it
               (`rest_from_converged`) and its matched BC (`bc_matched_from_converged`)

Every row (gold: the task's corpus metric, BLEU as configs/compare_multi30k.yaml sets `translation.heldout_metric`):
the test_2016_flickr corpus BLEU of the final greedy outputs (mean over seeds, 95% interval over seeds
and sentences), IWSLT14 BLEU (out of domain, lower-cased), and paired differences against `bc_matched` of the same
start and against `bc_converged` (the same sentences and seeds in both directories: paired). Written to
benchmarks/results/multi30k_controls.{json,md}, and the rows (with the goal) as the `controls` key of the Table 1
benchmark's multi30k_smollm2.json, where issue 19 asks for them; presets/multi30k.py keeps that key when it rewrites
the file, so neither benchmark overwrites the other.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from restlm import run_layout as layout
from restlm.stats import nested_bootstrap

STARTS = ("one_epoch", "converged")
ROW_NAMES = {("one_epoch", "sft"): "bc", ("one_epoch", "rest"): "rest", ("one_epoch", "rest_em"): "rest_em",
             ("one_epoch", "rest_gold"): "gold", ("one_epoch", "rest_bvmpo"): "bvmpo",
             ("one_epoch", "bc_matched"): "bc_matched", ("converged", "sft"): "bc_converged",
             ("converged", "rest"): "rest_from_converged", ("converged", "bc_matched"): "bc_matched_from_converged"}
MATCHED = {"one_epoch": "bc_matched", "converged": "bc_matched_from_converged"}


def load(folder: Path):
    """(compare.json, every method's final records by seed, the task with its data) of one compare directory."""
    from restlm.config import recorded_config
    from restlm.tasks import build_task

    compare = json.loads((folder / layout.COMPARE_SUMMARY).read_text())
    stages = json.loads((folder / "state.json").read_text())["stages"]
    task = build_task(recorded_config(json.loads((folder / "config.json").read_text())["experiment"]), None)
    task.load_data()
    records = {m["method"]: [stages[layout.method_final(seed, m["method"])] for seed in range(compare["seeds"])]
               for m in compare["methods"]}
    return compare, records, task


def summarise(out: str | Path, resamples: int = 2000) -> dict:
    """The rows of both directories, their paired differences and the issue's goal."""
    from restlm.machine import machine
    from restlm.tasks.translation import OUT_OF_DOMAIN

    out, rows, gold = Path(out), [], {}  # gold: row name -> (test, iwslt) row-functions per seed
    commands, sizes = {}, {}
    for start in STARTS:
        if not (out / start / layout.COMPARE_SUMMARY).exists():
            continue
        compare, records, task = load(out / start)
        commands[start] = compare["command"]
        tests, iwslt = task.heldout(), task.other_heldout().get(OUT_OF_DOMAIN, [])
        if iwslt and any(OUT_OF_DOMAIN not in r.get("other_heldout_outputs", {}) for rs in records.values() for r in rs):
            iwslt = []  # a final record from before compare kept out-of-domain outputs: no IWSLT intervals
        sizes.update(test=len(tests), iwslt=len(iwslt), train=len(task.train), dev=len(task.dev))
        for entry in compare["methods"]:
            name = ROW_NAMES.get((start, entry["method"]), f"{entry['method']}_{start}")
            finals = records[entry["method"]]
            gold[name] = ([task.gold_of_rows(tests, r["heldout_outputs"], None) for r in finals],
                          [task.other_gold_of_rows(OUT_OF_DOMAIN, iwslt, r["other_heldout_outputs"][OUT_OF_DOMAIN])
                           for r in finals]
                          if iwslt else None)
            ones = np.arange(len(tests))
            rows.append({"method": name, "compare_method": entry["method"], "start": start, "seeds": compare["seeds"],
                         "test_bleu_mean": float(np.mean([f(ones) for f in gold[name][0]])),
                         "test_bleu_ci95": entry["gold_ci95"],
                         "iwslt_bleu_mean": (float(np.mean([f(np.arange(len(iwslt))) for f in gold[name][1]]))
                                             if iwslt else None),
                         "chosen_steps": entry["chosen_steps"], "wall_time_s": entry["wall_time_s"],
                         "train_steps": [r.get("train_steps") for r in finals] if entry["method"] == "bc_matched"
                         else None,
                         "epochs_trained": [r.get("epochs_trained") for r in finals] if entry["method"] == "sft"
                         else None})

    def paired(a: str, b: str, which: int) -> dict | None:
        if a == b or b not in gold or gold[a][which] is None or gold[b][which] is None:
            return None
        pairs = list(zip(gold[a][which], gold[b][which]))  # seed i with seed i: the seeds both have
        n = sizes["test"] if which == 0 else sizes["iwslt"]
        result = nested_bootstrap(pairs, n, resamples, seed=0)
        return {"diff": result["diff"], "ci95": result["ci95"], "excludes_zero": result["excludes_zero"],
                "seeds": len(pairs)}

    for row in rows:
        for control in (MATCHED[row["start"]], "bc_converged"):
            for which, split in ((0, "test"), (1, "iwslt")):
                diff = paired(row["method"], control, which)
                row[f"{split}_diff_vs_{control.removesuffix('_from_converged')}"] = diff
        row["diff_vs_bc_matched_ci95"] = (row.get("test_diff_vs_bc_matched") or {}).get("ci95")
    goal = paired("rest", "bc_matched", 0)
    return {"machine": machine(), "commands": commands, "sizes": sizes, "methods": rows,
            "goal": {"rest_minus_bc_matched_test_bleu": goal, "wanted": ">= 2 BLEU, interval excluding 0",
                     "met": bool(goal and goal["diff"] >= 2 and goal["ci95"][0] > 0)}}


def markdown(summary: dict) -> str:
    def ci(value):
        return f"[{value[0]:+.2f}, {value[1]:+.2f}]" if value else "–"

    def diff(value):
        return f"{value['diff']:+.2f} {ci(value['ci95'])}" if value else "–"

    lines = ["# ReST against matched and converged BC on Multi30k (SmolLM2-135M-Instruct, De→En)", "",
             f"Machine: {summary['machine']}. Sizes: {summary['sizes']}.", "",
             *[f"- `{start}`: `{command}`" for start, command in summary["commands"].items()], "",
             "Rows: `bc` the one-epoch start, `bc_converged` the start trained to its best dev epoch; `gold`, `bvmpo` "
             "ReST with those Improve losses.", "",
             "| row | start | seeds | test BLEU | 95% CI | IWSLT BLEU | − BC matched (test) | − BC converged (test) "
             "| − BC matched (IWSLT) | chosen steps |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in summary["methods"]:
        iwslt = f"{r['iwslt_bleu_mean']:.2f}" if r["iwslt_bleu_mean"] is not None else "–"
        lines.append(f"| {r['method']} | {r['start']} | {r['seeds']} | {r['test_bleu_mean']:.2f} | "
                     f"{ci(r['test_bleu_ci95'])} | {iwslt} | {diff(r['test_diff_vs_bc_matched'])} | "
                     f"{diff(r['test_diff_vs_bc_converged'])} | {diff(r['iwslt_diff_vs_bc_matched'])} | "
                     f"{', '.join(r['chosen_steps'])} |")
    goal = summary["goal"]
    lines += ["", f"Goal (ReST − BC matched on test ≥ 2 BLEU, interval excluding 0): "
              f"{diff(goal['rest_minus_bc_matched_test_bleu'])} → **{'met' if goal['met'] else 'not met'}**.", "",
              "Differences are paired: the same test sentences and seeds, a bootstrap over seeds and then sentences; "
              "`bc_matched` is compared with the BC matched to the ReST of its own start."]
    return "\n".join(lines) + "\n"


CONTROLS_KEY = "controls"  # in multi30k_smollm2.json


def read_table(table: str | Path) -> dict:
    """The Table 1 results file `table` (.json) as a dict; {} when it is not there. A damaged file is one DataError."""
    from restlm.errors import DataError

    table = Path(table).with_suffix(".json")
    if not table.exists():
        return {}
    try:
        whole = json.loads(table.read_text())
    except ValueError as error:
        raise DataError(table, f"not JSON ({error}); move it aside and rerun") from None
    if not isinstance(whole, dict):
        raise DataError(table, "not a results object")
    return whole


def kept_controls(table: str | Path) -> dict | None:
    """The controls' rows a rewrite of the Table 1 file keeps (presets/multi30k.py), or None."""
    return read_table(table).get(CONTROLS_KEY)


def merge_into(table: str | Path, summary: dict) -> None:
    """Set the `controls` key of the Table 1 results file `table` (.json) to these rows, the rest of it kept, and
    rewrite its markdown with them; without that file (the Table 1 benchmark never ran here) it holds the
    controls alone."""
    from restlm.atomic_files import write_atomic, write_json
    from restlm.presets.multi30k import summary_markdown

    whole = read_table(table)
    whole[CONTROLS_KEY] = {key: summary[key] for key in ("machine", "commands", "sizes", "methods", "goal")}
    write_json(Path(table).with_suffix(".json"), whole)
    if "rows" in whole:
        write_atomic(Path(table).with_suffix(".md"), summary_markdown(whole))


def publish(out: str | Path, results: str | Path, table: str | Path | None = None) -> dict:
    """Summarise the two directories under `out`; write RESULTS.json and RESULTS.md, and the rows into `table`'s
    `controls` key (merge_into) when it is given."""
    from restlm.presets import publish as write

    summary = summarise(out)
    write(results, summary, markdown(summary))
    if table is not None:
        merge_into(table, summary)
    return summary
