"""Threshold schedules of the Improve steps, against values worked out by hand: the reference
schedule (mean first, then strictly tighter) for NLL (lower is better) and for higher-is-better
rewards, the rising list (its last value repeats), and per-input percentile masks."""
from __future__ import annotations

import numpy as np
import pytest

from restlm.thresholds import (
    improve_masks,
    per_input_percentile_mask,
    reference_thresholds,
    rising_thresholds,
)

NLL = np.array([0.2, 0.4, 0.6, 1.0, 1.8])  # mean 0.8, best (min) 0.2
SCORES = np.array([0.1, 0.3, 0.5, 0.9])  # mean 0.45, best (max) 0.9


def test_reference_schedule_nll_by_hand():
    # 0.8 -> 0.2 + 0.6 * 0.5 = 0.5 -> 0.2 + 0.3 * 0.5 = 0.35 -> 0.275
    assert reference_thresholds(NLL, 4, higher_is_better=False, decay=0.5) == pytest.approx([0.8, 0.5, 0.35, 0.275])
    # decay 0.25 moves three quarters of the way each step: 0.8 -> 0.35 -> 0.2375
    assert reference_thresholds(NLL, 3, False, 0.25) == pytest.approx([0.8, 0.35, 0.2375])


def test_reference_schedule_higher_is_better_by_hand():
    # 0.45 -> 0.9 - 0.45 * 0.5 = 0.675 -> 0.7875
    assert reference_thresholds(SCORES, 3, higher_is_better=True, decay=0.5) == pytest.approx([0.45, 0.675, 0.7875])


@pytest.mark.parametrize("higher_is_better", [False, True])
def test_reference_schedule_is_strictly_tighter(higher_is_better):
    rewards = np.random.default_rng(0).gamma(2.0, size=200)
    thresholds = reference_thresholds(rewards, 6, higher_is_better, 0.5)
    assert thresholds[0] == pytest.approx(rewards.mean())
    steps = np.diff(thresholds)
    assert (steps > 0).all() if higher_is_better else (steps < 0).all()
    best = rewards.max() if higher_is_better else rewards.min()
    # never past the best reward, so the last step still keeps at least one sample
    assert all((t <= best) if higher_is_better else (t >= best) for t in thresholds)


def test_reference_masks_nll():
    masks = improve_masks("reference", NLL, ["0"] * 5, 3, higher_is_better=False, values=[], decay=0.5)
    assert [t for _, t in masks] == pytest.approx([0.8, 0.5, 0.35])
    assert [m.tolist() for m, _ in masks] == [
        [True, True, True, False, False],  # <= 0.8
        [True, True, False, False, False],  # <= 0.5
        [True, False, False, False, False],  # <= 0.35
    ]


def test_reference_masks_higher_is_better():
    masks = improve_masks("reference", SCORES, ["0"] * 4, 2, higher_is_better=True, values=[], decay=0.5)
    assert [m.tolist() for m, _ in masks] == [[False, False, True, True], [False, False, False, True]]


def test_rising_list_repeats_its_last_value():
    assert rising_thresholds([0.0, 0.7, 0.8], 5) == [0.0, 0.7, 0.8, 0.8, 0.8]
    assert rising_thresholds([0.0, 0.7, 0.8], 2) == [0.0, 0.7]
    masks = improve_masks("rising", [0.1, 0.75, 0.85, 0.95], list("abcd"), 4, True, [0.0, 0.7, 0.9], 0.5)
    assert [t for _, t in masks] == [0.0, 0.7, 0.9, 0.9]
    assert [m.tolist() for m, _ in masks] == [
        [True, True, True, True],
        [False, True, True, True],
        [False, False, False, True],
        [False, False, False, True],
    ]


def test_per_input_percentile_mask_by_hand():
    rewards = np.array([1.0, 2.0, 3.0, 4.0, 10.0, 20.0])
    groups = np.array(["a", "a", "a", "a", "b", "b"])
    # median of a = 2.5, of b = 15
    assert per_input_percentile_mask(rewards, groups, 0.5, True).tolist() == [False, False, True, True, False, True]
    assert per_input_percentile_mask(rewards, groups, 0.5, False).tolist() == [True, True, False, False, True, False]
    # 75th percentile of a = 3.25, of b = 17.5; for lower-is-better the 25th: 1.75 and 12.5
    assert per_input_percentile_mask(rewards, groups, 0.75, True).tolist() == [False, False, False, True, False, True]
    assert per_input_percentile_mask(rewards, groups, 0.75, False).tolist() == [True, False, False, False, True, False]
    # quantile 0 keeps everything; a group of one always keeps its sample
    assert per_input_percentile_mask(rewards, groups, 0.0, True).all()
    assert per_input_percentile_mask(np.array([5.0]), np.array(["x"]), 0.99, True).tolist() == [True]


def test_percentile_schedule_logs_the_quantile():
    rewards = [1.0, 2.0, 3.0, 4.0]
    masks = improve_masks("percentile", rewards, ["a"] * 4, 3, True, [0.0, 0.5], 0.5)
    assert [t for _, t in masks] == [0.0, 0.5, 0.5]
    assert [int(m.sum()) for m, _ in masks] == [4, 2, 2]


def test_unknown_schedule():
    with pytest.raises(ValueError, match="unknown threshold schedule"):
        improve_masks("median", [1.0], ["a"], 1, True, [], 0.5)
