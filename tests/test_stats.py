"""Seed statistics against values worked out by hand; paired bootstraps against the normal interval."""
import math

import numpy as np
import pytest

from restlm.stats import (UNIT_INTERVAL, classification_metrics, metric_bounds, paired_bootstrap,
                          paired_difference, summarise)

T975 = {1: 12.706205, 2: 4.302653, 3: 3.182446}  # Student-t 0.975 quantiles from tables


def test_summarise_two_values():
    s = summarise([0.8, 0.9])
    assert s["n"] == 2
    assert s["mean"] == pytest.approx(0.85)
    assert s["std"] == pytest.approx(math.sqrt(0.005))  # 0.0707..
    half = T975[1] * 0.05  # t * std / sqrt(2) = t * 0.05
    assert s["ci95"] == pytest.approx([0.85 - half, 0.85 + half], abs=1e-5)
    assert s["ci95"][0] == pytest.approx(0.21469, abs=1e-5)


def test_summarise_four_values():
    s = summarise([1, 2, 3, 4])
    assert (s["n"], s["mean"]) == (4, 2.5)
    assert s["std"] == pytest.approx(math.sqrt(5 / 3))
    half = T975[3] * math.sqrt(5 / 3) / 2
    assert s["ci95"] == pytest.approx([2.5 - half, 2.5 + half], abs=1e-5)


def test_summarise_clips_an_accuracy_interval_to_0_1():
    # two seeds: mean .97, std/sqrt(2) = .02, half width 12.706 * .02 = .2541 -> raw [.7159, 1.2241]
    raw = summarise([0.95, 0.99])["ci95"]
    assert raw == pytest.approx([0.97 - T975[1] * 0.02, 0.97 + T975[1] * 0.02], abs=1e-5)
    assert raw[1] > 1
    clipped = summarise([0.95, 0.99], bounds=UNIT_INTERVAL)
    assert clipped["ci95"] == pytest.approx([0.97 - T975[1] * 0.02, 1.0], abs=1e-5)
    assert clipped["mean"] == pytest.approx(0.97) and clipped["std"] == pytest.approx(0.04 / math.sqrt(2))
    assert summarise([0.01, 0.05], bounds=UNIT_INTERVAL)["ci95"][0] == 0.0


def test_metric_bounds_by_name():
    assert metric_bounds("dev_accuracy") == metric_bounds("dev_f1") == metric_bounds("win_rate") == (0.0, 1.0)
    assert metric_bounds("dev_bleu") is None and metric_bounds("train_loss") is None


def test_summarise_one_value_is_degenerate():
    assert summarise([0.7]) == {"n": 1, "mean": 0.7, "std": 0.0, "ci95": [0.7, 0.7]}


def test_summarise_empty_raises():
    with pytest.raises(ValueError):
        summarise([])


def test_paired_difference_interval_crossing_zero():
    d = paired_difference([0.85, 0.87, 0.86], [0.84, 0.84, 0.83])  # diffs .01 .03 .03
    assert d["n"] == 3
    assert d["mean"] == pytest.approx(0.07 / 3)
    assert d["std"] == pytest.approx(math.sqrt(0.0004 / 3))
    half = T975[2] * d["std"] / math.sqrt(3)
    assert d["ci95"] == pytest.approx([0.07 / 3 - half, 0.07 / 3 + half], abs=1e-6)
    assert d["ci95"][0] < 0 < d["ci95"][1]
    assert d["excludes_zero"] is False


def test_paired_difference_excludes_zero_either_side():
    up = paired_difference([0.86, 0.87, 0.88], [0.84, 0.84, 0.84])  # diffs .02 .03 .04
    assert up["mean"] == pytest.approx(0.03)
    assert up["ci95"] == pytest.approx([0.03 - T975[2] * 0.01 / math.sqrt(3),
                                        0.03 + T975[2] * 0.01 / math.sqrt(3)], abs=1e-6)
    assert up["excludes_zero"] is True
    down = paired_difference([0.84, 0.84, 0.84], [0.86, 0.87, 0.88])
    assert down["mean"] == pytest.approx(-0.03) and down["excludes_zero"] is True


def test_paired_difference_one_seed_never_excludes_zero():
    d = paired_difference([0.9], [0.8])
    assert d["mean"] == pytest.approx(0.1)
    assert d["ci95"] == pytest.approx([0.1, 0.1])
    assert d["excludes_zero"] is False


def test_paired_difference_unequal_lengths_raise():
    with pytest.raises(ValueError):
        paired_difference([0.9, 0.8], [0.8])


def test_classification_metrics():
    # TP=2, FP=1, FN=1: precision = recall = 2/3, so F1 = 2/3
    m = classification_metrics([1, 1, 0, 0, 1], [1, 0, 0, 1, 1])
    assert m == pytest.approx({"accuracy": 0.6, "f1": 2 / 3})
    # F1 is about class 1 only: never predicting it gives 0 however accurate
    never_positive = classification_metrics([0, 0, 1], [0, 0, 0])
    assert never_positive == pytest.approx({"accuracy": 2 / 3, "f1": 0.0})


def test_paired_bootstrap_of_a_mean_matches_the_normal_interval():
    rng = np.random.default_rng(1)
    a, b = rng.normal(0.3, 1.0, 400), np.zeros(400)
    d = paired_bootstrap(lambda r: a[r].mean(), lambda r: b[r].mean(), 400, resamples=2000)
    half = 1.96 * a.std(ddof=1) / np.sqrt(400)
    assert d["diff"] == pytest.approx(a.mean())
    assert d["ci95"][0] == pytest.approx(a.mean() - half, abs=0.25 * half)
    assert d["ci95"][1] == pytest.approx(a.mean() + half, abs=0.25 * half)
    assert d["excludes_zero"] and d["rows"] == 400


def test_paired_bootstrap_pairs_the_rows():
    # b is a shifted copy of a: every resample gives the same difference, so the interval is a point
    a = np.random.default_rng(2).normal(0.0, 1.0, 50)
    d = paired_bootstrap(lambda r: a[r].mean(), lambda r: (a[r] - 0.1).mean(), 50, resamples=200)
    assert d["ci95"] == pytest.approx([0.1, 0.1])
    assert d["diff"] == pytest.approx(0.1)
