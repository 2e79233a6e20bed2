"""Summaries over seeds (mean, sample std, Student-t 95% intervals, paired differences) and paired bootstraps."""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Sequence

import numpy as np
from scipy import stats as scipy_stats
from sklearn.metrics import accuracy_score, f1_score


# Accuracy, F1 and rates cannot leave [0, 1], but a Student-t interval over few seeds can
# (two seeds at 0.95 and 0.99 give [0.72, 1.22]), so theirs is clipped to the range.
UNIT_INTERVAL = (0.0, 1.0)
UNIT_BOUNDED_SUFFIXES = ("accuracy", "f1", "rate")


def metric_bounds(metric: str) -> tuple[float, float] | None:
    """UNIT_INTERVAL for a metric named like '..._accuracy', '..._f1' or '..._rate', else None."""
    return UNIT_INTERVAL if metric.lower().endswith(UNIT_BOUNDED_SUFFIXES) else None


def summarise(values: Sequence[float], bounds: tuple[float, float] | None = None) -> dict:
    """Summarise one number measured over seeds.

    In: the values, one per seed (at least one); bounds: the (low, high) range the metric
    cannot leave (e.g. UNIT_INTERVAL), or None.
    Out: {"n", "mean", "std", "ci95": [low, high]} where std is the sample std (ddof=1) and
    ci95 the Student-t interval mean +- t(0.975, n-1) * std / sqrt(n), clipped to `bounds`.
    With n == 1 there is no spread to estimate: std is 0.0 and ci95 is the degenerate
    [mean, mean], which says nothing about uncertainty.
    """
    x = np.asarray(list(values), dtype=float)
    if x.size == 0:
        raise ValueError("summarise() needs at least one value")
    n = int(x.size)
    mean = float(x.mean())
    if n == 1:
        return {"n": 1, "mean": mean, "std": 0.0, "ci95": [mean, mean]}
    std = float(x.std(ddof=1))
    half = float(scipy_stats.t.ppf(0.975, df=n - 1)) * std / math.sqrt(n)
    low, high = mean - half, mean + half
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return {"n": n, "mean": mean, "std": std, "ci95": [low, high]}


def paired_difference(treatment: Sequence[float], control: Sequence[float]) -> dict:
    """Summarise treatment - control, paired by position (one pair per seed).

    In: two equally long sequences; entry i of each comes from the same seed.
    Out: summarise() of the per-seed differences plus "excludes_zero": True when the 95%
    interval lies strictly above or below zero. With a single pair the interval is
    degenerate, so excludes_zero is False: one seed cannot show a difference is real.
    """
    t = np.asarray(list(treatment), dtype=float)
    c = np.asarray(list(control), dtype=float)
    if t.shape != c.shape:
        raise ValueError(f"paired_difference() needs equal lengths, got {t.size} and {c.size}")
    summary = summarise(t - c)
    low, high = summary["ci95"]
    summary["excludes_zero"] = bool(summary["n"] > 1 and (low > 0 or high < 0))
    return summary


def paired_bootstrap(metric_a: Callable[[np.ndarray], float], metric_b: Callable[[np.ndarray], float], rows: int,
                     resamples: int = 1000, seed: int = 0) -> dict:
    """Percentile bootstrap of metric_a - metric_b over `rows` evaluation rows, both on the same resamples.

    In: two functions from an array of row indices (drawn with replacement) to a metric over those
    rows, e.g. corpus BLEU of system A's outputs on them; how many rows there are.
    Out: {"diff": the difference on all rows, "ci95": [low, high], "excludes_zero", "rows", "resamples"}.
    A metric that is not a mean over rows (corpus BLEU) is recomputed on each resample, as it must be.
    """
    index = np.arange(rows)
    result = scipy_stats.bootstrap((index,), lambda r: metric_a(r) - metric_b(r), vectorized=False,
                                   n_resamples=resamples, method="percentile", rng=np.random.default_rng(seed))
    low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    return {"diff": float(metric_a(index) - metric_b(index)), "ci95": [low, high],
            "excludes_zero": bool(low > 0 or high < 0), "rows": rows, "resamples": resamples}


def classification_metrics(y_true: Sequence[int], y_pred: Sequence[int]) -> dict:
    """Accuracy and binary F1 (positive class 1) of predicted labels against gold labels.

    Out: {"accuracy": float, "f1": float}; F1 is 0.0 when class 1 is never predicted nor gold.
    """
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "f1": float(f1_score(y_true, y_pred, pos_label=1, average="binary", zero_division=0)),
    }


def nested_bootstrap(pairs: Sequence[tuple[Callable[[np.ndarray], float], Callable[[np.ndarray], float]]], rows: int,
                     resamples: int = 1000, seed: int = 0) -> dict:
    """Percentile bootstrap of mean over seeds of metric_a - metric_b, resampling seeds and then, within
    each drawn seed, the `rows` evaluation rows (the same rows for a and b: paired).

    In: one (metric_a, metric_b) pair per seed, each a function from row indices to a metric.
    Out: {"diff", "ci95", "excludes_zero", "seeds", "rows", "resamples"}. With one seed this is the
    paired bootstrap over rows; with several, the interval holds both seed and input variation.
    """
    rng = np.random.default_rng(seed)
    everything = np.arange(rows)
    diff = float(np.mean([a(everything) - b(everything) for a, b in pairs]))
    draws = []
    for _ in range(resamples):
        chosen = rng.integers(len(pairs), size=len(pairs)) if len(pairs) > 1 else [0]
        draws.append(np.mean([pairs[s][0](r := rng.integers(rows, size=rows)) - pairs[s][1](r) for s in chosen]))
    low, high = (float(v) for v in np.percentile(draws, [2.5, 97.5]))
    return {"diff": diff, "ci95": [low, high], "excludes_zero": bool(low > 0 or high < 0), "seeds": len(pairs),
            "rows": rows, "resamples": resamples}
