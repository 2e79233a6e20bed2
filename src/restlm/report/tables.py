"""Table 1 (baselines, fine-tuned, ReST) and Table 2 (every ReST step per N) as markdown."""
from __future__ import annotations

from restlm.report.cells import (FINE_TUNED, Step, best_rest_step, group_cells, paired_values,
                                 paper_table2, step_label, values)
from restlm.stats import UNIT_INTERVAL, paired_difference, summarise

# our baseline row (by name prefix) -> the paper's Table 1 row it should be read against
PAPER_ROW_FOR_BASELINE = {"untrained head": "pre-trained", "zero-shot": "GPT-4 zero-shot"}

NONE = "—"


# ---- formatting ----

def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A pipe table that python-markdown's `tables` extension renders; '|' in cells is escaped and
    line breaks become spaces (a name from a config must not end the table)."""
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(" ".join(str(c).split()).replace("|", "\\|") for c in cells) + " |"
    align = ["---"] + ["---:"] * (len(header) - 1)  # numbers read best right-aligned
    return "\n".join([line(header), line(align)] + [line(r) for r in rows])


def mean_std(xs: list[float]) -> str:
    """'0.8500 ± 0.0100' over seeds, just '0.8500' for one seed, '—' for none."""
    if not xs:
        return NONE
    s = summarise(xs)
    return f"{s['mean']:.4f} ± {s['std']:.4f}" if s["n"] > 1 else f"{s['mean']:.4f}"


def ci95(xs: list[float]) -> str:
    """'[0.8252, 0.8748]' for an accuracy over seeds (clipped to [0, 1]), or '—' when fewer
    than two seeds give no interval."""
    if len(xs) < 2:
        return NONE
    low, high = summarise(xs, bounds=UNIT_INTERVAL)["ci95"]
    return f"[{low:.4f}, {high:.4f}]"


# ---- Table 1 ----

def _as_list(value) -> list[float]:
    """A metric over seeds; a bare number (one run) is accepted as a one-entry list."""
    if value is None:
        return []
    return [float(value)] if isinstance(value, (int, float)) else [float(v) for v in value]


def _zero_shot_notes(metrics: dict) -> list[str]:
    """What a zero-shot row's accuracy hides: the answer it gives most (a model that says "No" to
    98.8% of pairs scores about the share of negatives) and the replies it could not parse."""
    notes = []
    yes = metrics.get("predicted_yes")
    if isinstance(yes, (int, float)):
        answer, share = ("Yes", float(yes)) if yes >= 0.5 else ("No", 1.0 - float(yes))
        notes.append(f"answers '{answer}' to {share:.1%} of pairs")
    unparsed = metrics.get("unparsed_fraction")  # replies neither yes nor no, counted as no
    if isinstance(unparsed, (int, float)):
        notes.append(f"{float(unparsed):.1%} of replies unparsed, counted as No")
    return notes


def _baseline_rows(results: dict, used: set) -> list[list[str]]:
    paper1 = results.get("reference", {}).get("table1", {}) or {}
    rows = []
    for name, metrics in (results.get("baselines") or {}).items():
        paper_row = next((p for ours, p in PAPER_ROW_FOR_BASELINE.items()
                          if name.lower().startswith(ours) and p in paper1), None)
        shown = f"{float(paper1[paper_row]):.4f} ({paper_row})" if paper_row else NONE
        used.add(paper_row)
        acc, f1 = _as_list(metrics.get("accuracy")), _as_list(metrics.get("f1"))
        if notes := _zero_shot_notes(metrics):
            name = f"{name} ({'; '.join(notes)})"
        rows.append([name, str(len(acc)), mean_std(acc), ci95(acc), mean_std(f1), shown])
    return rows


def _fine_tuned_paper(results: dict, n: int, used: set) -> str:
    """The paper's G0I0 for this N from Table 2, else its Table 1 'fine-tuned' row."""
    column, paper1 = paper_table2(results, n), results.get("reference", {}).get("table1", {}) or {}
    if "G0I0" in column:
        return f"{float(column['G0I0']):.4f} (Table 2, N={n})"
    if "fine-tuned" in paper1:
        used.add("fine-tuned")
        return f"{float(paper1['fine-tuned']):.4f} (fine-tuned)"
    return NONE


def _cell_rows(results: dict, used: set) -> list[list[str]]:
    rows = []
    for n, steps in group_cells(results.get("cells", [])).items():
        picks = [(FINE_TUNED, "fine-tuned")]
        if any(cell.get("val_accuracy") is not None for by_seed in steps.values() for cell in by_seed.values()):
            # chosen on the validation split carved from train: dev only scores it
            picks.append((best_rest_step(steps, "val_accuracy"), "ReST, chosen on validation"))
        picks.append((best_rest_step(steps), "ReST best on dev (optimistic)"))
        for step, kind in picks:
            if step not in steps:
                continue
            if step == FINE_TUNED:
                shown = _fine_tuned_paper(results, n, used)
            else:
                paper = paper_table2(results, n).get(step_label(step))
                shown = f"{float(paper):.4f} (Table 2, N={n})" if paper is not None else NONE
            acc, f1 = values(steps[step], "dev_accuracy"), values(steps[step], "dev_f1")
            rows.append([f"{kind} ({step_label(step)}, N={n})", str(len(acc)),
                         mean_std(acc), ci95(acc), mean_std(f1), shown])
    return rows


def table1_markdown(results: dict) -> str:
    """Table 1 as markdown. Rows: each baseline; per N the fine-tuned model (G0I0) and the ReST
    step with the best mean dev accuracy; then the paper's Table 1 rows none of ours matched.
    Columns: seeds, accuracy mean ± std and 95% CI, F1, the paper's accuracy and its row."""
    used: set = set()
    rows = _baseline_rows(results, used) + _cell_rows(results, used)
    for paper_row, value in (results.get("reference", {}).get("table1", {}) or {}).items():
        if paper_row not in used:
            rows.append([f"paper Table 1: {paper_row}"] + [NONE] * 4 + [f"{float(value):.4f}"])
    if not rows:
        return "_No baselines, cells or reference numbers in the results._"
    header = ["Method", "Seeds", "Accuracy (mean ± std)", "Accuracy 95% CI", "F1 (mean ± std)",
              "Paper accuracy"]
    return markdown_table(header, rows)


# ---- Table 2 ----

TABLE2_HEADER = ["Step", "Seeds", "Accuracy (mean ± std)", "Accuracy 95% CI", "F1 (mean ± std)",
                 "Change vs G0I0", "Paired Δ vs G0I0 [95% CI]", "Paper accuracy",
                 "Threshold (mean)", "Kept (mean)"]


def _percent_change(acc: list[float], base: list[float]) -> str:
    if not acc or not base:
        return NONE
    mean, base_mean = sum(acc) / len(acc), sum(base) / len(base)
    return f"{100.0 * (mean - base_mean) / base_mean:+.2f}%"


def _paired(by_seed: dict, base: dict, n_seeds: int) -> str:
    """Mean per-seed accuracy difference and its CI; bold when the CI excludes zero."""
    treated, control = paired_values(by_seed, base, "dev_accuracy")
    if not treated:
        return NONE
    d = paired_difference(treated, control)
    if d["n"] == 1:
        return f"{d['mean']:+.4f} (1 seed)"
    text = f"{d['mean']:+.4f} [{d['ci95'][0]:+.4f}, {d['ci95'][1]:+.4f}]"
    text = f"**{text}**" if d["excludes_zero"] else text
    return text if d["n"] == n_seeds else f"{text} ({d['n']} pairs)"


def _mean_or_none(xs: list[float], spec: str) -> str:
    return format(sum(xs) / len(xs), spec) if xs else NONE


def _table2_row(step: Step, by_seed: dict, base: dict | None, paper: dict) -> list[str]:
    acc, f1 = values(by_seed, "dev_accuracy"), values(by_seed, "dev_f1")
    is_base = step == FINE_TUNED or base is None
    paper_acc = paper.get(step_label(step))
    return [step_label(step), str(len(acc)), mean_std(acc), ci95(acc), mean_std(f1),
            NONE if is_base else _percent_change(acc, values(base, "dev_accuracy")),
            NONE if is_base else _paired(by_seed, base, len(acc)),
            NONE if paper_acc is None else f"{float(paper_acc):.4f}",
            _mean_or_none(values(by_seed, "threshold"), ".3g"),
            _mean_or_none(values(by_seed, "kept"), ".0f")]


def table2_markdown(results: dict) -> dict[int, str]:
    """Table 2 as one markdown table per N: {N: table}, N ascending, {} when there are no cells.
    A row per (G, I) step present, compared with G0I0 of the same N: change of the mean
    accuracy in percent, and the per-seed paired difference (bold when its CI excludes zero)."""
    tables = {}
    for n, steps in group_cells(results.get("cells", [])).items():
        base, paper = steps.get(FINE_TUNED), paper_table2(results, n)
        rows = [_table2_row(step, by_seed, base, paper) for step, by_seed in steps.items()]
        tables[n] = markdown_table(TABLE2_HEADER, rows)
    return tables
