"""The experiment report: tables and figures from results.json, as report.md and report.html.

    from restlm.report import write_report
    paths = write_report(run_dir, json.loads((run_dir / "results.json").read_text()))
"""
from __future__ import annotations

from pathlib import Path

from restlm.atomic_files import write_atomic
from restlm.report.cells import histogram_groups
from restlm.report.document import report_markdown
from restlm.report.figures import (
    accuracy_by_step_figure,
    nll_figure_stem,
    nll_histogram_figure,
    reward_histogram_figure,
)
from restlm.report.html import markdown_to_html

__all__ = ["write_report"]


def _write_figures(run_dir: Path, results: dict) -> dict[str, Path]:
    """Draw every figure the results have data for; {file stem: path}."""
    figures: dict[str, Path] = {}
    path = accuracy_by_step_figure(run_dir / "accuracy_by_step.png", results)
    if path is not None:
        figures["accuracy_by_step"] = path
    for (n, seed), stages in histogram_groups(results.get("histograms") or []).items():
        stem = nll_figure_stem(n, seed)
        figures[stem] = nll_histogram_figure(run_dir / f"{stem}.png", stages)
    if results.get("reward_histograms"):
        figures["rewards"] = reward_histogram_figure(run_dir / "rewards.png",
                                                     results["reward_histograms"])
    return figures


def write_report(run_dir: Path, results: dict) -> dict[str, Path]:
    """Write report.md, report.html and the PNG figures into run_dir, each atomically.

    In: the run directory (created if missing) and the results dict (results.json schema;
    baselines, histograms, reward_histograms and N=1000 cells may be absent, one seed is fine).
    Out: {"md": report.md, "html": report.html, plus one entry per figure by file stem:
    "accuracy_by_step", "nll_N{N}_seed{seed}", "rewards"}. The HTML embeds the figures, so it
    is readable on its own.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    figures = _write_figures(run_dir, results)
    md_text = report_markdown(results, {stem: path.name for stem, path in figures.items()})
    md_path = write_atomic(run_dir / "report.md", md_text)
    page = markdown_to_html(md_text, str(results.get("title", "ReST report")), run_dir,
                            {path.name for path in figures.values()})
    html_path = write_atomic(run_dir / "report.html", page)
    return {"md": md_path, "html": html_path, **figures}
