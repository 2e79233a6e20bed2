"""The report's figures as PNGs (matplotlib, Agg canvas, no pyplot global state).

Every function takes the target path and the part of results.json it draws, writes the PNG
atomically and returns the path. Sizes are fixed so a figure's pixel shape is known:
figsize inches x DPI.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from restlm.atomic_files import write_bytes_atomic
from restlm.report.cells import group_cells, paper_table2, step_label, values
from restlm.stats import metric_bounds, summarise

DPI = 100
NLL_FIGSIZE = (10.0, 5.5)
ACCURACY_PANEL_SIZE = (6.0, 4.5)   # one panel per N, side by side
REWARD_PANEL_SIZE = (4.5, 3.2)     # one panel per Grow step, up to 3 a row
NLL_FLOOR = 1e-6                   # NLL of a confident right answer rounds to 0; log bins need > 0


def _new_figure(size: tuple[float, float]) -> Figure:
    fig = Figure(figsize=size, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> Path:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return write_bytes_atomic(Path(path), buffer.getvalue())


def nll_figure_stem(n: int, seed: int) -> str:
    """File stem of the Figure 2 PNG for one (N, seed): "nll_N100_seed0"."""
    return f"nll_N{n}_seed{seed}"


def nll_histogram_figure(path: Path, stages: list[dict]) -> Path:
    """Figure 2: overlaid histograms of per-example training NLL, one per stage, on log-spaced
    bins, with each stage's mean as a dotted line. `stages` are results["histograms"] entries
    of one (N, seed): {"label", "nll": [...], "dev_accuracy"}."""
    return _save(nll_figure(stages), path)


def nll_figure(stages: list[dict]) -> Figure:
    """The figure `nll_histogram_figure` writes, not yet saved."""
    nlls = [np.clip(np.asarray(s["nll"], dtype=float), NLL_FLOOR, None) for s in stages]
    present = [x for x in nlls if x.size]
    low = min((float(x.min()) for x in present), default=NLL_FLOOR)
    high = max((float(x.max()) for x in present), default=1.0)
    bins = np.logspace(np.log10(low), np.log10(max(high, 10 * low)), 60)
    fig = _new_figure(NLL_FIGSIZE)
    ax = fig.add_subplot()
    for i, (stage, x) in enumerate(zip(stages, nlls)):
        color = f"C{i}"
        acc = stage.get("dev_accuracy")
        label = f"{stage['label']}: " + (f"mean NLL {x.mean():.3g}" if x.size else "empty")
        label += f", dev acc {acc:.4f}" if acc is not None else ""
        ax.hist(x, bins=bins, histtype="stepfilled", alpha=0.15, color=color)
        ax.hist(x, bins=bins, histtype="step", linewidth=1.6, color=color, label=label)
        if x.size:
            ax.axvline(x.mean(), color=color, linestyle=":", linewidth=2)
    ax.set_xscale("log")
    # NLLs are clipped to the floor and the bins start at the smallest, so the first bin holds
    # every NLL below its upper edge, the 0s of confident right answers included
    ax.set_xlabel(f"per-example NLL of the gold label (log scale; the first bin holds every NLL "
                  f"below {bins[1]:.3g}, 0 included)")
    ax.set_ylabel("training examples")
    first = stages[0] if stages else {}
    ax.set_title(f"NLL over the training data, N={first.get('N', '?')}, "
                 f"seed {first.get('seed', '?')}")
    ax.legend(loc="upper right", fontsize=9)
    return fig


def _draw_accuracy_panel(ax, n: int, steps: dict, paper: dict, metric: str = "dev_accuracy") -> None:
    x = np.arange(len(steps))
    labels = [step_label(step) for step in steps]
    summaries = [summarise(values(by_seed, metric), metric_bounds(metric)) for by_seed in steps.values()]
    means = np.array([s["mean"] for s in summaries])
    seeds = max(s["n"] for s in summaries)
    with_spread = [s["n"] > 1 for s in summaries]
    if any(with_spread):  # one seed has no interval: no band, and no legend entry for one
        ax.fill_between(x, [s["ci95"][0] for s in summaries], [s["ci95"][1] for s in summaries],
                        where=with_spread, color="C0", alpha=0.2, label="95% CI over seeds")
    for xi, by_seed in zip(x, steps.values()):
        accs = values(by_seed, metric)
        ax.scatter([xi] * len(accs), accs, color="C0", alpha=0.35, s=14,
                   label="single seeds" if xi == 0 and seeds > 1 else None)
    ax.plot(x, means, "o-", color="C0", label="seed mean" if seeds > 1 else "one seed")
    known = [(xi, paper[lab]) for xi, lab in zip(x, labels) if lab in paper]
    if known:
        ax.plot(*zip(*known), "x--", color="0.4", label="paper")
    ax.set_xticks(x, labels)
    ax.set_title(f"N = {n} ({seeds} seed{'s' if seeds > 1 else ''})")
    ax.set_xlabel("step (Grow G, Improve I)")
    ax.grid(axis="y", alpha=0.3)


CLASSIFICATION_SELECTION = ("dev_accuracy", "val_accuracy")
"""a classification run's selection metrics: on dev, or on a validation split carved from train"""


def reported_metric(results: dict) -> str:
    """The metric the step figure shows: the selection metric, but dev accuracy where a validation split chose
    (dev is what the report scores, and what the paper's crosses are)."""
    metric = results.get("primary_metric", "dev_accuracy")
    return "dev_accuracy" if metric in CLASSIFICATION_SELECTION else metric


def accuracy_figure(results: dict) -> Figure | None:
    """The figure `accuracy_by_step_figure` writes, not yet saved; None without cells."""
    metric = reported_metric(results)
    grouped = {n: {k: v for k, v in steps.items() if values(v, metric)}
               for n, steps in group_cells(results.get("cells", [])).items()}
    grouped = {n: steps for n, steps in grouped.items() if steps}
    if not grouped:
        return None
    width, height = ACCURACY_PANEL_SIZE
    fig = _new_figure((width * len(grouped), height))
    axes = fig.subplots(1, len(grouped), sharey=True, squeeze=False)[0]
    for ax, (n, steps) in zip(axes, grouped.items()):
        paper = {k: float(v) for k, v in paper_table2(results, n).items()}
        _draw_accuracy_panel(ax, n, steps, paper, metric)
    axes[0].set_ylabel(metric.replace("_", " "))
    # one legend below the panels: inside an axes it covered points
    entries: dict = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            entries.setdefault(label, handle)
    fig.legend(list(entries.values()), list(entries), loc="outside lower center", ncols=len(entries), fontsize=8)
    return fig


def accuracy_by_step_figure(path: Path, results: dict) -> Path | None:
    """The selection metric (results["primary_metric"], default dev accuracy) against step (G, I),
    one panel per N: seed mean, per-seed points, a 95% CI band (absent with one seed) and the
    paper's numbers, with one legend below the panels. None (nothing written) without cells."""
    fig = accuracy_figure(results)
    return None if fig is None else _save(fig, path)


def nll_like(rewards: np.ndarray) -> bool:
    """None negative and most near 0 (an NLL): on linear bins nearly every row and every threshold
    would crowd into the first bins, so such rewards are drawn on a log axis."""
    return bool(rewards.size) and rewards.min() >= 0 and np.median(rewards) < 0.1 * rewards.max()


def _draw_rewards(ax, rewards: np.ndarray, thresholds: list[float]) -> None:
    if nll_like(rewards):
        rewards, thresholds = np.clip(rewards, NLL_FLOOR, None), [max(t, NLL_FLOOR) for t in thresholds]
        low, high = rewards.min(), max(rewards.max(), 10 * rewards.min())
        bins = np.logspace(np.log10(low), np.log10(high), 40)
        ax.hist(rewards, bins=bins, color="0.6")
        ax.set_xscale("log")
        ax.set_xlabel(f"reward (log scale; first bin: below {bins[1]:.3g}, 0 included)")
    else:
        ax.hist(rewards, bins=40, color="0.6")
        ax.set_xlabel("reward")
    for i, threshold in enumerate(thresholds):
        ax.axvline(threshold, color=f"C{i}", linestyle="--", label=f"I{i + 1}: {threshold:.3g}")


def reward_histogram_figure(path: Path, entries: list[dict]) -> Path:
    """Rewards of the grown examples at each Grow step, one panel per entry
    ({"N", "seed", "G", "rewards": [...], "thresholds": [...]}), each Improve step's
    threshold as a dashed line; NLL-like rewards (see `nll_like`) on a log axis."""
    return _save(reward_figure(entries), path)


def reward_figure(entries: list[dict]) -> Figure:
    """The figure `reward_histogram_figure` writes, not yet saved."""
    cols = min(3, len(entries))
    rows = -(-len(entries) // cols)
    width, height = REWARD_PANEL_SIZE
    fig = _new_figure((width * cols, height * rows))
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, entry in zip(axes, entries):
        _draw_rewards(ax, np.asarray(entry.get("rewards", []), dtype=float), entry.get("thresholds") or [])
        title = f"N={entry.get('N')}, seed {entry.get('seed')}, G{entry.get('G')}"
        ax.set_title(title, fontsize=10)
        if entry.get("thresholds"):
            ax.legend(fontsize=7, title="threshold", title_fontsize=7)
    for ax in axes[len(entries):]:
        ax.set_visible(False)
    axes[0].set_ylabel("grown examples")
    return fig
