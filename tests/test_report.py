"""The report: numbers in the tables, figures on disk, HTML that renders in headless Chromium."""
import importlib.util
import subprocess
import sys
from pathlib import Path

import markdown
import numpy as np
import pytest
from matplotlib import image as mpimg

from restlm.report import figures, write_report
from restlm.report.steps import steps_table_markdown

REPO = Path(__file__).resolve().parents[1]
CHECK_SCRIPT = REPO / "scripts" / "check_report_renders.py"
CHROMIUM = Path("/usr/bin/chromium")

STEPS = {100: [(0, 0), (1, 1), (1, 2), (1, 3), (2, 1), (2, 2), (2, 3)],
         1000: [(0, 0), (1, 1), (1, 2), (1, 3)]}
# dev accuracy per seed 0, 1, 2 for the cells the tests check by hand; others follow a formula
ACCURACY = {(100, 0, 0): [0.80, 0.81, 0.82], (100, 1, 1): [0.82, 0.84, 0.83],
            (100, 2, 3): [0.84, 0.86, 0.86]}
REFERENCE = {
    "table1": {"pre-trained": 0.3161, "fine-tuned": 0.8588, "GPT-4 zero-shot": 0.7819},
    "table2": {"100": {"G0I0": 0.8382, "G1I1": 0.8333, "G1I2": 0.8627, "G1I3": 0.8455,
                       "G2I1": 0.8284, "G2I2": 0.8480, "G2I3": 0.8774},
               "1000": {"G0I0": 0.8651, "G1I1": 0.8724, "G1I2": 0.8701, "G1I3": 0.8701}}}


def _cell(seed: int, n: int, g: int, i: int) -> dict:
    acc = ACCURACY.get((n, g, i), [0.80 + 0.004 * (g + i) + 0.003 * s for s in range(3)])[seed]
    return {"seed": seed, "N": n, "G": g, "I": i, "dev_accuracy": acc, "dev_f1": acc + 0.05,
            "threshold": None if g == 0 else 0.1 * i, "kept": None if g == 0 else 3000 - 100 * i,
            "kept_mean_reward": None, "lr": 2e-5, "wall_time_s": 60.0}


def synthetic_results(seeds=(0, 1, 2), ns=(100, 1000)) -> dict:
    """A results.json-shaped dict: baselines, cells for each seed and N, Figure 2 and rewards."""
    rng = np.random.default_rng(0)
    stages = [("fine-tuned", 0.81), ("G1I3", 0.83), ("G2I3", 0.86)]
    return {
        "title": "ReST on MRPC with minilm",
        "config": {"model": "minilm", "data": {"name": "mrpc"}},
        "seeds": list(seeds),
        "baselines": {"majority class": {"accuracy": [0.6838], "f1": [0.8122]},
                      "untrained head": {"accuracy": [0.31, 0.35, 0.33], "f1": [0.1, 0.2, 0.15]}},
        "reference": REFERENCE,
        "cells": [_cell(s, n, g, i) for s in seeds for n in ns for g, i in STEPS[n]],
        "histograms": [{"label": label, "N": 100, "seed": 0, "dev_accuracy": acc,
                        "nll": rng.lognormal(-2 - k, 2, 3668).tolist()}
                       for k, (label, acc) in enumerate(stages)],
        "reward_histograms": [{"N": 100, "seed": 0, "G": g, "thresholds": [0.1, 0.2, 0.3],
                               "rewards": rng.uniform(0, 1, 400).tolist()} for g in (1, 2)],
    }


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    return run_dir, write_report(run_dir, synthetic_results())


def test_tables_hold_the_numbers_worked_out_by_hand(report):
    md = report[1]["md"].read_text()
    # G0I0, N=100: [.80 .81 .82] -> std .01, t(.975, 2) = 4.3027 -> half width .0248
    assert "| G0I0 | 3 | 0.8100 ± 0.0100 | [0.7852, 0.8348] |" in md
    # G1I1: mean .83, +2.47% on .81; paired diffs .02 .03 .01 -> CI crosses zero, not bold
    assert "| +2.47% | +0.0200 [-0.0048, +0.0448] | 0.8333 |" in md
    # G2I3: paired diffs .04 .05 .04 -> CI [.0290, .0577] excludes zero, bold
    assert "**+0.0433 [+0.0290, +0.0577]**" in md
    assert "| ReST best on dev (optimistic) (G2I3, N=100) | 3 | 0.8533 ± 0.0115 |" in md
    assert "| untrained head | 3 | 0.3300 ± 0.0200 | [0.2803, 0.3797] |" in md
    assert "0.3161 (pre-trained)" in md and "| paper Table 1: GPT-4 zero-shot |" in md
    assert "### N = 100" in md and "### N = 1000" in md and "0.8724" in md


def test_markdown_tables_render_and_html_is_self_contained(report):
    paths = report[1]
    rendered = markdown.markdown(paths["md"].read_text(), extensions=["tables"])
    assert rendered.count("<table>") == 4  # Table 1, Table 2 for N=100 and N=1000, metrics by step
    page = paths["html"].read_text()
    assert page.startswith("<!DOCTYPE html>") and page.count("<table>") == 4
    assert page.count('src="data:image/png;base64,') == 3
    assert 'src="' not in page.replace('src="data:', "")


def test_figures_are_pngs_of_the_designed_size(report):
    paths = report[1]
    assert set(paths) == {"md", "html", "accuracy_by_step", "nll_N100_seed0", "rewards"}
    (acc_w, acc_h), (reward_w, reward_h) = figures.ACCURACY_PANEL_SIZE, figures.REWARD_PANEL_SIZE
    expected = {"nll_N100_seed0": figures.NLL_FIGSIZE,  # two N panels, two Grow-step panels
                "accuracy_by_step": (2 * acc_w, acc_h), "rewards": (2 * reward_w, reward_h)}
    for stem, (width, height) in expected.items():
        pixels = mpimg.imread(paths[stem])
        assert pixels.shape == (round(height * figures.DPI), round(width * figures.DPI), 4), stem
        assert pixels[..., :3].std() > 0.05, f"{stem} is blank"


def test_writes_leave_no_temp_files(report):
    run_dir, paths = report
    assert sorted(p.name for p in run_dir.iterdir()) == sorted(p.name for p in paths.values())


def test_one_seed_one_n_no_baselines(tmp_path):
    results = synthetic_results(seeds=(0,), ns=(100,))
    for key in ("baselines", "histograms", "reward_histograms"):
        del results[key]
    paths = write_report(tmp_path, results)
    md = paths["md"].read_text()
    assert set(paths) == {"md", "html", "accuracy_by_step"}
    assert "| G0I0 | 1 | 0.8000 | — |" in md  # no std, no CI with one seed
    assert "+0.0200 (1 seed)" in md and "**" not in md.split("## Table 2")[1].split("*Change")[0]
    assert "N = 1000" not in md and "| paper Table 1: pre-trained |" in md


def test_kl_column_only_when_a_step_logged_it():
    results = synthetic_results(seeds=(0, 1), ns=(100,))
    assert "KL to Grow policy" not in steps_table_markdown(results)  # runs from before the KL guard
    for cell in results["cells"]:
        if cell["G"] > 0:
            cell.update(grow_log_prob_gain=1.5, token_entropy=2.0, kl_to_grow_policy=0.1 * cell["seed"] + 0.2)
    lines = steps_table_markdown(results).splitlines()
    assert lines[0].endswith("| Log-prob gain on Grow samples | Token entropy | KL to Grow policy | Wall time (s) |")
    g1i1 = next(line for line in lines if line.startswith("| G1I1, N=100 |"))
    assert g1i1.endswith("| 1.500 | 2.000 | 0.250 | — |")  # KL: mean of 0.2 and 0.3 over the seeds
    fine_tuned = next(line for line in lines if line.startswith("| fine-tuned G0I0"))
    assert fine_tuned.endswith("| — | — | — | — |")


def test_empty_results_still_give_a_report(tmp_path):
    paths = write_report(tmp_path, {})
    assert set(paths) == {"md", "html"}
    assert "No cells in the results" in paths["md"].read_text()


def _check_module():
    spec = importlib.util.spec_from_file_location("check_report_renders", CHECK_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dom_check_catches_missing_tables_and_bad_images():
    check = _check_module()
    page = "<table><tr><td>0.8100</td></tr></table><img src='x.png'>"
    no_image = check.check_dom(page, "<table><tr><td>0.8100</td></tr></table>")
    assert no_image == ["no <img> in the DOM"]
    failures = check.check_dom(page, '<p>gone</p><img src="data:image/png;base64,aGVsbG8=">')
    assert "no table in the page" in failures
    assert "table cell missing from the DOM: '0.8100'" in failures
    assert "<img> 0 is not a data: URI of a PNG" in failures


@pytest.mark.skipif(not CHROMIUM.exists(),
                    reason="/usr/bin/chromium absent: apt-get install -y chromium")
def test_html_renders_in_headless_chromium(report, tmp_path):
    screenshot = tmp_path / "page.png"
    command = [sys.executable, str(CHECK_SCRIPT), str(report[1]["html"]),
               "--screenshot", str(screenshot)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert mpimg.imread(screenshot).shape[:2] == (2000, 1200)


def test_baseline_given_as_a_bare_number():
    from restlm.report.tables import table1_markdown
    md = table1_markdown({"baselines": {"majority class": {"accuracy": 0.6838, "f1": 0.8122}}})
    assert "| majority class | 1 | 0.6838 | — | 0.8122 | — |" in md


def test_accuracy_interval_is_clipped_to_1():
    from restlm.report.tables import table1_markdown
    # two seeds at .95 and .99: the raw Student-t interval is [.7159, 1.2241]
    md = table1_markdown({"baselines": {"zero-shot": {"accuracy": [0.95, 0.99], "f1": [0.9, 0.9]}}})
    assert "| zero-shot | 2 | 0.9700 ± 0.0283 | [0.7159, 1.0000] |" in md


def test_compute_counts_each_stage_once_not_the_cumulative_cell_times():
    from restlm.report.document import training_seconds

    # as results._cells writes them: one fine-tuning (100 s) shared by two grow sizes, a Grow step of
    # 10 s then Improve steps of 5 and 7 s for N=100, a Grow step of 20 s and one Improve step of 3 s for N=1000
    def cell(n, g, i, stage, grow=None, total=0.0):
        return {"seed": 0, "N": n, "G": g, "I": i, "stage_wall_time_s": stage, "grow_wall_time_s": grow,
                "wall_time_s": total}
    cells = [cell(100, 0, 0, 100.0, total=100.0), cell(100, 1, 1, 5.0, 10.0, 115.0), cell(100, 1, 2, 7.0, 10.0, 122.0),
             cell(1000, 0, 0, 100.0, total=100.0), cell(1000, 1, 1, 3.0, 20.0, 123.0)]
    assert training_seconds(cells) == pytest.approx(100 + 10 + 5 + 7 + 20 + 3)
    assert training_seconds([]) == 0.0


@pytest.mark.parametrize("fraction,shown", [(0.0, "0.0% of replies unparsed"), (0.25, "25.0% of replies unparsed"),
                                            (1.0, "100.0% of replies unparsed")])
def test_zero_shot_row_shows_its_unparsed_share(fraction, shown):
    from restlm.report.tables import table1_markdown

    results = synthetic_results(seeds=(0,), ns=(100,))
    results["baselines"]["zero-shot LLM (m)"] = {"accuracy": [0.5], "f1": [0.4], "unparsed_fraction": fraction}
    row = next(line for line in table1_markdown(results).splitlines() if line.startswith("| zero-shot LLM (m)"))
    assert shown in row and "| 0.5000 |" in row and "0.7819 (GPT-4 zero-shot)" in row
    assert "unparsed" not in table1_markdown(synthetic_results(seeds=(0,), ns=(100,)))


def test_the_header_counts_seeds_and_names_them():
    from restlm.report.document import _header

    assert "Seeds: 1 (seed 0)" in _header(synthetic_results(seeds=(0,), ns=(100,)))[2]
    assert "Seeds: 3 (seeds 0, 1, 2)" in _header(synthetic_results())[2]
    assert _header({"cells": []})[2].startswith("Seeds: none")


class _Stages:
    """A run directory reduced to its stage records (what results._baselines reads)."""

    def __init__(self, stages: dict):
        self.stages = stages

    def stage(self, key: str):
        return self.stages.get(key)


def test_zero_shot_row_says_which_answer_it_gives_from_the_stage_record():
    from restlm import run_layout as layout
    from restlm.config import load_config
    from restlm.results import _baselines
    from restlm.report.tables import table1_markdown

    # as the zero-shot stage writes it to metrics.jsonl: SmolLM2 said "Yes" to 1.2% of the dev pairs
    record = {"model": "smollm2", "backend": "local", "dev_accuracy": 0.3186, "dev_f1": 0.0144,
              "predicted_yes": 0.012, "unparsed_fraction": 0.0, "wall_time_s": 150.0}
    baselines = _baselines(load_config(None, []), _Stages({layout.ZERO_SHOT: record}), "untrained head")
    results = {**synthetic_results(seeds=(0,), ns=(100,)), "baselines": baselines}
    row = next(line for line in table1_markdown(results).splitlines() if line.startswith("| zero-shot LLM (smollm2)"))
    assert "answers 'No' to 98.8% of pairs" in row and "0.0% of replies unparsed" in row
    assert "| 0.3186 |" in row and "0.7819 (GPT-4 zero-shot)" in row
    record["predicted_yes"] = 0.9
    baselines = _baselines(load_config(None, []), _Stages({layout.ZERO_SHOT: record}), "untrained head")
    assert "answers 'Yes' to 90.0% of pairs" in table1_markdown({"baselines": baselines})


def test_compute_lists_the_baselines_beside_training():
    from restlm.report.document import _header

    results = synthetic_results(seeds=(0,), ns=(100,))
    for cell in results["cells"]:  # 7 stages of 10 min: 1.17 h of training
        cell["stage_wall_time_s"] = 600.0
    results["baselines"]["untrained head"]["wall_time_s"] = [30.0]
    results["baselines"]["zero-shot LLM (m)"] = {"accuracy": [0.5], "f1": [0.4], "wall_time_s": [150.0]}
    assert ("Compute: 1.17 h (fine-tuning, Grow and Improve steps) + 3.0 min baselines "
            "(untrained head 30 s, zero-shot LLM (m) 2.5 min)") in _header(results)[2]
    del results["baselines"]
    assert _header(results)[2].endswith("Compute: 1.17 h (fine-tuning, Grow and Improve steps)")


def _legend_labels(fig) -> list[str]:
    return [text.get_text() for legend in fig.legends for text in legend.get_texts()]


def test_accuracy_legend_lists_no_band_for_one_seed_and_covers_no_point():
    one = figures.accuracy_figure(synthetic_results(seeds=(0,)))
    assert _legend_labels(one) == ["one seed", "paper"]
    assert not any(ax.collections and any(c.get_label() == "95% CI over seeds" for c in ax.collections)
                   for ax in one.axes)  # no band drawn either
    three = figures.accuracy_figure(synthetic_results())
    assert _legend_labels(three) == ["95% CI over seeds", "single seeds", "seed mean", "paper"]
    for fig in (one, three):
        assert not any(ax.get_legend() for ax in fig.axes)  # no legend inside a panel
        fig.canvas.draw()
        legend = fig.legends[0].get_window_extent()
        assert all(not legend.overlaps(ax.get_window_extent()) for ax in fig.axes)


def test_nll_like_rewards_are_drawn_on_a_log_axis():
    rng = np.random.default_rng(0)
    nll = np.concatenate([rng.lognormal(-6, 2, 900), rng.uniform(0.5, 5, 100)])  # most mass near 0
    assert figures.nll_like(nll) and not figures.nll_like(rng.uniform(0, 1, 400))
    assert not figures.nll_like(rng.normal(0, 1, 400))  # negative rewards: not an NLL
    fig = figures.reward_figure([
        {"N": 100, "seed": 0, "G": 1, "rewards": nll.tolist(), "thresholds": [0.28, 0.14, 0.07]},
        {"N": 100, "seed": 0, "G": 2, "rewards": rng.uniform(0, 1, 400).tolist(), "thresholds": [0.5]}])
    drawn = [(ax.get_xscale(), [line.get_xdata()[0] for line in ax.get_lines()]) for ax in fig.axes]
    assert drawn == [("log", [0.28, 0.14, 0.07]), ("linear", [0.5])]


def test_figure2_first_bin_holds_what_its_axis_says():
    """The x-axis names the first bin's upper edge; every NLL below it (0s included) is counted there."""
    nll = [0.0, 1e-9, 3e-5, 0.01, 2.0]
    fig = figures.nll_figure([{"label": "fine-tuned", "nll": nll}, {"label": "G1I1", "nll": [1e-3, 0.5]}])
    ax = fig.axes[0]
    edge = float(ax.get_xlabel().split("every NLL below ")[1].split(",")[0])
    first_bar = ax.patches[0]  # the first stage's filled histogram: one polygon, its second vertex tops bin 1
    heights = first_bar.get_xy()[:, 1]
    assert edge == pytest.approx(1e-6 * 10 ** ((np.log10(2.0) + 6) / 59), rel=1e-3)
    assert heights.max() == 2 and heights[1] == sum(x < edge for x in nll) == 2


def test_table1_chooses_rest_on_the_validation_split_and_keeps_the_dev_pick_as_optimistic():
    """Cells with a validation accuracy: the validation-chosen step is reported on dev beside the dev pick."""
    from restlm.report.tables import table1_markdown

    results = synthetic_results(seeds=(0, 1), ns=(100,))
    for cell in results["cells"]:  # validation prefers G1I1, dev prefers another step
        cell["val_accuracy"] = 0.9 if (cell["G"], cell["I"]) == (1, 1) else 0.5
    md = table1_markdown(results)
    chosen = next(line for line in md.splitlines() if line.startswith("| ReST, chosen on validation"))
    optimistic = next(line for line in md.splitlines() if line.startswith("| ReST best on dev (optimistic)"))
    assert "(G1I1, N=100)" in chosen and "(G1I1, N=100)" not in optimistic
    g1i1 = [c["dev_accuracy"] for c in results["cells"] if (c["G"], c["I"]) == (1, 1)]
    assert f"{np.mean(g1i1):.4f} ± {np.std(g1i1, ddof=1):.4f}" in chosen
    assert "ReST, chosen on validation" not in table1_markdown(synthetic_results(seeds=(0,), ns=(100,)))


def test_a_run_that_selects_on_validation_keeps_tables_1_and_2_and_plots_dev_accuracy():
    """The default MRPC config carves a validation split: its report still has the classification tables, and
    the step figure shows dev accuracy (the reported metric, the paper's), not the selection split's."""
    from restlm.report.document import report_markdown
    from restlm.report.figures import accuracy_figure

    results = synthetic_results(seeds=(0, 1), ns=(100,))
    results["primary_metric"] = "val_accuracy"
    for cell in results["cells"]:
        cell["val_accuracy"] = 0.9 if (cell["G"], cell["I"]) == (1, 1) else 0.5
    md = report_markdown(results, {"accuracy_by_step": "accuracy_by_step.png"})
    assert "## Table 1: baselines, fine-tuned and ReST" in md and "| ReST, chosen on validation (G1I1, N=100)" in md
    assert "## Dev accuracy by step" in md
    assert accuracy_figure(results).axes[0].get_ylabel() == "dev accuracy"
