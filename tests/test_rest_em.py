"""ReST-EM and the new ReST options by hand: the preset, the cap per input, the binary reward,
and their config errors."""
from __future__ import annotations

import numpy as np
import pytest

from restlm.config import load_config
from restlm.errors import ConfigError
from restlm.rest import cap_per_input
from restlm.rewards.base import Reward, binarised


def test_preset_fills_what_the_user_did_not_set():
    config = load_config(None, ["rest.preset=rest_em", "rest.max_kept_per_input=3"])
    rest = config.rest
    assert (rest.restart_from, rest.binary_reward_threshold, rest.improve_steps) == ("start", 0.5, 1)
    assert (rest.threshold, rest.thresholds, rest.original_data) == ("rising", [0.5], "none")
    assert rest.max_kept_per_input == 3  # the user's value wins over the preset's 10


def test_preset_replaces_the_files_rest_keys(tmp_path):
    path = tmp_path / "rest.yaml"
    path.write_text("rest:\n  improve_steps: 3\n  threshold: percentile\n  original_data: filtered\n")
    config = load_config(path, ["rest.preset=rest_em"])
    assert (config.rest.improve_steps, config.rest.threshold, config.rest.original_data) == (1, "rising", "none")


def test_unknown_preset_names_the_key():
    with pytest.raises(ConfigError, match="rest.preset.*rest_em"):
        load_config(None, ["rest.preset=rest_xx"])


@pytest.mark.parametrize("override, key", [("rest.top_p=0", "rest.top_p"), ("rest.max_kept_per_input=0", "rest.max_kept_per_input"),
                                           ("rest.restart_from=base", "rest.restart_from"), ("task=summary", "task"),
                                           ("rest.guard_samples=-1", "rest.guard_samples"),
                                           ("translation.heldout_metric=rouge", "translation.heldout_metric")])
def test_bad_values_name_their_key(override, key):
    with pytest.raises(ConfigError) as error:
        load_config(None, [override])
    assert error.value.key == key


def test_cap_keeps_the_best_of_each_input():
    mask = np.array([True, True, True, False, True, True])
    rewards = np.array([0.2, 0.9, 0.5, 1.0, 0.7, 0.7])
    groups = ["a", "a", "a", "a", "b", "b"]
    kept = cap_per_input(mask, rewards, groups, 2, higher_is_better=True)
    # input a: 0.9 and 0.5 (1.0 was not in the mask); input b: a tie, both fit under the cap
    assert kept.tolist() == [False, True, True, False, True, True]
    assert cap_per_input(mask, rewards, groups, 1, True).tolist() == [False, True, False, False, True, False]
    assert cap_per_input(mask, rewards, groups, 1, False).tolist() == [True, False, False, False, True, False]


def test_binary_reward():
    reward = Reward("r", lambda p, e, o: [0.2, 0.5, 0.9])
    assert binarised(reward, 0.5)(None, [None] * 3, [None] * 3).tolist() == [0.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="higher-is-better"):
        binarised(Reward("nll", lambda p, e, o: [1.0], higher_is_better=False), 0.5)
