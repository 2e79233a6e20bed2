"""The report's markdown: header, Table 1, Table 2, figures with captions, config."""
from __future__ import annotations

import json

from restlm.report.cells import histogram_groups
from restlm.report.steps import guard_table_markdown, steps_table_markdown
from restlm.report.figures import CLASSIFICATION_SELECTION, nll_figure_stem, reported_metric
from restlm.report.tables import table1_markdown, table2_markdown
from restlm.run_sections import config_shown

CONFIG_FACTS = ("model", "data", "dataset", "task", "policy")

TABLE1_CAPTION = (
    "*Accuracy and F1 on the dev set, mean over seeds. ± is the sample standard deviation over "
    "seeds; the 95% CI is the Student-t interval over seeds, clipped to [0, 1] (none with one "
    "seed). \"ReST, chosen on validation\" (when `data.validation_fraction` carves a validation split "
    "from the training pairs) is the step with the highest mean validation accuracy, scored on dev, "
    "which did not choose it. \"ReST best on dev\" is the step with the highest mean dev accuracy, "
    "picked on the same dev set it is scored on, so it is optimistic. Paper accuracy gives the "
    "paper's number and the row it comes from.*")

TABLE2_CAPTION = (
    "*Change vs G0I0: relative change of the mean accuracy. Paired Δ: mean over seeds of "
    "(step − G0I0) accuracy on the same seed, with its 95% CI; **bold** when the CI excludes "
    "zero. Threshold and kept: the reward threshold of the Improve step and the number of "
    "examples kept, mean over seeds.*")

ACCURACY_CAPTION = (
    "*Dev accuracy at each step (G Grow steps, I Improve steps), one panel per N. Line: mean "
    "over seeds; dots: single seeds; band: 95% Student-t CI over seeds, clipped to [0, 1] (none where a "
    "step has one seed); crosses: the paper.*")

NLL_CAPTION = (
    "*Per-example NLL of the gold label over the training data at each stage (as the paper's "
    "Figure 2). Bins are log-spaced from the smallest NLL and the x-axis is log scale because most "
    "NLLs are near 0 with a long tail; the first bin holds every NLL below its upper edge (given on "
    "the x-axis), NLLs of 0 included. Dotted lines: each stage's mean NLL; the legend gives it with the "
    "stage's dev accuracy.*")

STEPS_CAPTION = (
    "*Every metric at every step, mean over seeds (the untrained row is the pretrained model "
    "before fine-tuning). G0I0 is supervised fine-tuning; GgIi is Improve step i of Grow step g. "
    "Threshold and kept: the Improve step's reward threshold and the rows it trained on; distinct "
    "samples: the share of a Grow step's samples per input that were different strings. Log-prob "
    "gain: how much the Improve steps raised the log-prob of the Grow step's own samples (drift toward "
    "them, not a KL); KL to Grow policy: log p - log p_Grow on fresh samples of the step's policy, in nats.*")

GUARD_CAPTION = (
    "*Reward-hacking guard: the training reward of the decoded held-out sentences beside a metric "
    "the reward never saw. A step where the reward rises while the held-out metric falls is "
    "flagged: the policy may be learning what the reward likes rather than what it stands for.*")

REWARD_CAPTION = (
    "*Reward of every row of the augmented set (original data and grown examples) at each Grow "
    "step; dashed lines: the threshold of each Improve step. Rows on the better side of a "
    "threshold (below it for NLL) are kept. Rewards with none negative and most near 0 (NLL) are "
    "drawn on a log axis, so the thresholds among them stay apart.*")


def _config_fact(value) -> str | None:
    """A config entry as one short string: a scalar, or a section's name/path/id."""
    if isinstance(value, (str, int, float)):
        return str(value)
    if isinstance(value, dict):
        return next((str(value[k]) for k in ("path", "name", "id") if k in value), None)
    return None


def _header(results: dict) -> list[str]:
    seeds = results.get("seeds", [])
    # a count with the ids: "Seeds: 0" for one seed read as "no seeds"
    facts = [f"Seeds: {len(seeds)} ({'seed' if len(seeds) == 1 else 'seeds'} {', '.join(map(str, seeds))})"
             if seeds else "Seeds: none"]
    config = results.get("config") or {}
    for key in CONFIG_FACTS:
        fact = _config_fact(config.get(key)) if isinstance(config, dict) else None
        if key == "data" and results.get("data_name"):  # what the task reads (a prompts file, not data.path)
            fact = str(results["data_name"])
        if fact:
            facts.append(f"{key.capitalize()}: `{' '.join(fact.split())}`")
    if compute := compute_fact(results):
        facts.append(f"Compute: {compute}")
    title = " ".join(str(results.get("title", "ReST report")).split())  # one line: a heading, nothing more
    return [f"# {title}", "", " · ".join(facts)]


def duration(seconds: float) -> str:
    """'42 s', '3.5 min' or '1.20 h': a baseline of seconds must not read as '0.00 h'."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 3600 else f"{seconds / 3600:.2f} h"


def baseline_seconds(baselines: dict) -> dict[str, float]:
    """{baseline row: wall time summed over its seeds}, for the rows that recorded one."""
    return {name: float(sum(row["wall_time_s"])) for name, row in (baselines or {}).items()
            if isinstance(row, dict) and row.get("wall_time_s")}


def compute_fact(results: dict) -> str | None:
    """The header's Compute: training (fine-tuning, Grow, Improve) and the baselines beside it, or None."""
    training = training_seconds(results.get("cells", []))
    baselines = baseline_seconds(results.get("baselines"))
    parts = [f"{duration(training)} (fine-tuning, Grow and Improve steps)"] if training else []
    if baselines:
        each = ", ".join(f"{name} {duration(seconds)}" for name, seconds in baselines.items())
        parts.append(f"{duration(sum(baselines.values()))} baselines ({each})")
    return " + ".join(parts) or None


def training_seconds(cells: list[dict]) -> float:
    """Wall time of every stage once: each seed's fine-tuning, each Grow step, each Improve step.

    A cell's wall_time_s is cumulative along its trajectory, and every grow size repeats its seed's
    fine-tuning as its G0I0 cell, so the stages' own times are summed instead.
    """
    total, counted = 0.0, set()
    for c in cells:
        stages = [(("sft", c["seed"]) if c["G"] == 0 else ("improve", c["seed"], c["N"], c["G"], c["I"]),
                   c.get("stage_wall_time_s")),
                  (("grow", c["seed"], c["N"], c["G"]), c.get("grow_wall_time_s"))]
        for key, seconds in stages:
            if seconds is not None and key not in counted:
                counted.add(key)
                total += seconds
    return total


def _figure(title: str, file_name: str, caption: str) -> list[str]:
    return ["", f"## {title}", "", f"![{title}]({file_name})", "", caption]


def _classification_tables(results: dict) -> list[str]:
    """The reference experiment's Table 1 and Table 2 (accuracy, paired differences, the paper)."""
    lines = ["", "## Table 1: baselines, fine-tuned and ReST", "", table1_markdown(results),
             "", TABLE1_CAPTION, "", "## Table 2: ReST steps against the fine-tuned model (G0I0)"]
    tables = table2_markdown(results)
    for n, table in tables.items():
        lines += ["", f"### N = {n}", "", table]
    return lines + ["", TABLE2_CAPTION if tables else "*No cells in the results.*"]


def report_markdown(results: dict, figures: dict[str, str]) -> str:
    """The whole report as markdown (python-markdown with the `tables` extension renders it).

    In: results (the results.json schema) and the figure file names written beside the report,
    keyed by stem: "accuracy_by_step", nll_figure_stem(N, seed) per Figure 2, "rewards";
    any may be absent.
    """
    lines = _header(results)
    if results.get("primary_metric", "dev_accuracy") in CLASSIFICATION_SELECTION:
        lines += _classification_tables(results)
    lines += ["", "## Metrics by step", "", steps_table_markdown(results), "", STEPS_CAPTION]
    guard = guard_table_markdown(results)
    if guard:
        lines += ["", "## Reward-hacking guard", "", guard, "", GUARD_CAPTION]
    if "accuracy_by_step" in figures:
        metric = reported_metric(results).replace("_", " ")
        lines += _figure(f"{metric.capitalize()} by step", figures["accuracy_by_step"],
                         ACCURACY_CAPTION.replace("Dev accuracy", metric.capitalize()))
    for n, seed in histogram_groups(results.get("histograms") or []):
        if (key := nll_figure_stem(n, seed)) in figures:
            lines += _figure(f"Figure 2: training NLL by stage (N={n}, seed {seed})",
                             figures[key], NLL_CAPTION)
    if "rewards" in figures:
        lines += _figure("Rewards at each Grow step", figures["rewards"], REWARD_CAPTION)
    sections = results.get("config_sections")  # None: every section (a plugin task, an older results.json)
    config = json.dumps(config_shown(results.get("config") or {}, sections), indent=2, sort_keys=True, default=str)
    lines += ["", "## Config", ""]
    if sections is not None:
        lines += ["*The sections this run's task and method read; results.json holds every key.*", ""]
    lines += ["    " + line for line in config.splitlines()]
    return "\n".join(lines) + "\n"
