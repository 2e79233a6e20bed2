"""Threshold schedules of the Improve steps: which grown samples each step keeps.

Each schedule returns, for Improve step i (1-based), a keep-mask over the rewards and the
threshold to log. Rewards arrive with `higher_is_better`, so NLL (lower is better) works as is.
"""
from __future__ import annotations

import numpy as np


def _keep(rewards: np.ndarray, threshold, higher_is_better: bool) -> np.ndarray:
    return rewards >= threshold if higher_is_better else rewards <= threshold


def reference_thresholds(rewards: np.ndarray, steps: int, higher_is_better: bool, decay: float) -> list[float]:
    """The reference's schedule: the mean reward first, then strictly tighter at every step.

    Each step moves the threshold the fraction (1 - decay) of the way to the best reward.
    """
    best = rewards.max() if higher_is_better else rewards.min()
    thresholds = [float(rewards.mean())]
    for _ in range(steps - 1):
        thresholds.append(float(best + (thresholds[-1] - best) * decay))
    return thresholds


def rising_thresholds(values: list[float], steps: int) -> list[float]:
    """ReST's list, e.g. [0, 0.7, 0.8, 0.9, 0.95, 0.99]; past its end the last value repeats."""
    return [values[min(i, len(values) - 1)] for i in range(steps)]


def per_input_percentile_mask(rewards: np.ndarray, groups: np.ndarray, quantile: float, higher_is_better: bool) -> np.ndarray:
    """Keep the samples at or above the given quantile (in [0, 1]) of their own input's rewards."""
    mask = np.zeros(len(rewards), dtype=bool)
    for group in np.unique(groups):
        members = groups == group
        q = 100 * (quantile if higher_is_better else 1 - quantile)
        mask[members] = _keep(rewards[members], np.percentile(rewards[members], q), higher_is_better)
    return mask


def improve_masks(kind: str, rewards, groups, steps: int, higher_is_better: bool, values: list[float], decay: float,
                  strata=None):
    """[(mask, logged_threshold)] for Improve steps 1..steps under schedule `kind`.

    `strata` (e.g. each row's label): run the schedule inside each stratum on its own, so the kept
    rows keep the strata's proportions; the logged threshold is then the mean over strata.
    """
    if strata is not None:
        strata = np.asarray(strata)
        per_stratum = {s: improve_masks(kind, np.asarray(rewards)[strata == s], np.asarray(groups)[strata == s], steps,
                                        higher_is_better, values, decay) for s in np.unique(strata)}
        masks = []
        for step in range(steps):
            mask = np.zeros(len(strata), dtype=bool)
            for s, schedule in per_stratum.items():
                mask[strata == s] = schedule[step][0]
            masks.append((mask, float(np.mean([schedule[step][1] for schedule in per_stratum.values()]))))
        return masks
    rewards = np.asarray(rewards, dtype=np.float64)
    if kind == "percentile":
        percentiles = rising_thresholds(values, steps)
        return [(per_input_percentile_mask(rewards, np.asarray(groups), p, higher_is_better), p) for p in percentiles]
    if kind == "rising":
        thresholds = rising_thresholds(values, steps)
    elif kind == "reference":
        thresholds = reference_thresholds(rewards, steps, higher_is_better, decay)
    else:
        raise ValueError(f"unknown threshold schedule {kind!r}")
    return [(_keep(rewards, t, higher_is_better), t) for t in thresholds]
