"""Reward ensembles on tiny random BERT members: the score against a hand computation from the members'
own rewards, calibration, the spread penalty, save/load and the `reward_model:` spec, one-line load
errors, and `run_reward_ensemble` end to end."""
from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import build_tiny_bert, cue_pairs, run_cli, stderr_lines

from restlm.data.examples import Example
from restlm.errors import ModelLoadError
from restlm.reward_models import RewardModel, RewardTrainConfig, pairwise_accuracy
from restlm.reward_models.fitting import combine_reward_models, run_reward_ensemble
from restlm.reward_models.ensemble import ENSEMBLE_FILE, RewardEnsemble, is_ensemble
from restlm.rewards import build_reward


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ensemble_members")
    return [RewardModel.from_pretrained(str(build_tiny_bert(folder / f"m{seed}", seed=seed, num_labels=1)), max_length=32)
            for seed in (0, 1, 2)]


def rows(n: int, seed: int):
    pairs = cue_pairs(n, seed)
    return [p.prompt for p in pairs], [p.chosen for p in pairs]


def test_score_is_the_mean_of_standardised_members_less_the_penalty_times_their_spread(members):
    prompts, responses = rows(6, seed=0)
    ensemble = RewardEnsemble(members, centres=[0.1, -0.2, 0.3], scales=[2.0, 0.5, 1.0], spread_penalty=0.5)
    raw = np.stack([m.score(prompts, responses) for m in members])
    z = (raw - np.array([[0.1], [-0.2], [0.3]])) / np.array([[2.0], [0.5], [1.0]])
    hand = z.mean(axis=0) - 0.5 * np.sqrt(((z - z.mean(axis=0)) ** 2).mean(axis=0))
    np.testing.assert_allclose(ensemble.score(prompts, responses), hand, atol=1e-6)
    assert np.ptp(hand) > 0  # different rows, different rewards: the check can fail


def test_calibration_standardises_each_member_on_the_calibration_rows(members):
    prompts, responses = rows(12, seed=1)
    ensemble = RewardEnsemble.calibrated(members, prompts, responses)
    z = ensemble.member_scores(prompts, responses)
    np.testing.assert_allclose(z.mean(axis=1), 0.0, atol=1e-6)
    np.testing.assert_allclose(z.std(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(ensemble.score(prompts, responses).mean(), 0.0, atol=1e-6)


def test_save_and_load_give_the_same_rewards_and_the_spec_loads_an_ensemble(members, tmp_path):
    prompts, responses = rows(8, seed=2)
    ensemble = RewardEnsemble.calibrated(members, prompts, responses, spread_penalty=0.25)
    ensemble.save(tmp_path / "rm")
    assert is_ensemble(tmp_path / "rm") and not is_ensemble(tmp_path)
    loaded = RewardEnsemble.from_pretrained(tmp_path / "rm")
    assert loaded.spread_penalty == 0.25 and len(loaded.members) == 3
    np.testing.assert_allclose(loaded.score(prompts, responses), ensemble.score(prompts, responses), atol=1e-5)
    reward = build_reward(f"reward_model:{tmp_path / 'rm'}")
    examples = [Example(text=p) for p in prompts]
    np.testing.assert_allclose(reward(None, examples, responses), ensemble.score(prompts, responses), atol=1e-5)


def test_a_malformed_ensemble_file_is_one_line_load_error(members, tmp_path):
    RewardEnsemble(members[:2], [0.0, 0.0], [1.0, 1.0]).save(tmp_path / "rm")
    spec = json.loads((tmp_path / "rm" / ENSEMBLE_FILE).read_text())
    (tmp_path / "rm" / ENSEMBLE_FILE).write_text(json.dumps({**spec, "scales": [1.0, 0.0]}))
    with pytest.raises(ModelLoadError, match="scale must be positive") as error:
        RewardEnsemble.from_pretrained(tmp_path / "rm")
    assert "\n" not in str(error.value)
    (tmp_path / "rm" / ENSEMBLE_FILE).write_text("{not json")
    with pytest.raises(ModelLoadError, match="not a reward ensemble"):
        build_reward(f"reward_model:{tmp_path / 'rm'}")


def test_run_reward_ensemble_trains_members_from_successive_seeds(tmp_path):
    model = str(build_tiny_bert(tmp_path / "base", seed=0, num_labels=1))
    train, held_out = cue_pairs(32, seed=0), cue_pairs(16, seed=1)
    cfg = RewardTrainConfig(learning_rate=1e-2, epochs=2, batch_size=8, seed=3)
    metrics = run_reward_ensemble(model, 2, train, held_out, cfg, max_length=32, out=tmp_path / "rm",
                                  calibration_pairs=16)
    assert [m["config"]["seed"] for m in metrics["members"]] == [3, 4]
    assert metrics["kind"] == "ensemble" and metrics["calibration_pairs"] == 16
    # 32 pairs x 2 epochs per member, the members one after the other
    assert metrics["train_pairs_per_s"] == pytest.approx(64 / metrics["train_time_s"], rel=1e-3)
    loaded = RewardEnsemble.from_pretrained(tmp_path / "rm")
    assert metrics["heldout_pairwise_accuracy"] == pytest.approx(pairwise_accuracy(loaded, held_out))
    assert metrics["heldout_pairwise_accuracy"] > 0.9  # the cue is learnt
    saved = json.loads((tmp_path / "rm" / "metrics.json").read_text())
    assert saved["members_heldout_pairwise_accuracy"] == metrics["members_heldout_pairwise_accuracy"]
    # the members differ: each saw the pairs in its own seed's order (a new head would be drawn from it too)
    a, b = loaded.members
    assert not np.allclose(a.score(*rows(4, 5)), b.score(*rows(4, 5)))
    with pytest.raises(ValueError, match="at least 2 members"):
        run_reward_ensemble(model, 1, train, held_out, cfg)


def test_the_command_saves_an_ensemble_and_refuses_a_bad_count(tmp_path):
    model = build_tiny_bert(tmp_path / "base", seed=0, num_labels=1)
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps({"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected}) + "\n"
                            for p in cue_pairs(24, seed=0)))
    common = ["reward-model", "--model", str(model), "--data", str(data), "--train-pairs", "16", "--eval-pairs", "8",
              "--max-length", "32", "--epochs", "1", "--learning-rate", "1e-2"]
    done = run_cli(*common, "--out", str(tmp_path / "rm"), "--ensemble", "2", "--spread-penalty", "0.5")
    assert done.returncode == 0, done.stderr[-2000:]
    printed = json.loads(done.stdout)
    assert printed["kind"] == "ensemble" and len(printed["members"]) == 2 and printed["spread_penalty"] == 0.5
    assert RewardEnsemble.from_pretrained(tmp_path / "rm").spread_penalty == 0.5
    refused = run_cli(*common, "--out", str(tmp_path / "none"), "--ensemble", "0")
    assert refused.returncode == 2 and "--ensemble" in stderr_lines(refused.stderr)[-1]
    assert not (tmp_path / "none").exists()


def test_combine_reward_models_measures_saved_members_of_other_runs_as_one_ensemble(members, tmp_path):
    # two members saved as an ensemble's folders (their training recorded in its metrics.json), one alone
    RewardEnsemble(members[:2], [0.0, 0.0], [1.0, 1.0]).save(tmp_path / "pair")
    (tmp_path / "pair" / "metrics.json").write_text(json.dumps(
        {"members": [{"name": "a", "train_pairs_per_s": 2.0, "train_time_s": 10.0},
                     {"name": "b", "train_pairs_per_s": 4.0, "train_time_s": 5.0}]}))
    members[2].save(tmp_path / "alone")
    (tmp_path / "alone" / "metrics.json").write_text(json.dumps({"name": "c", "train_pairs_per_s": 4.0}))
    paths = [tmp_path / "pair" / "member_0", tmp_path / "pair" / "member_1", tmp_path / "alone"]
    train, held_out = cue_pairs(12, seed=3), cue_pairs(10, seed=4)
    metrics = combine_reward_models(paths, train, held_out, out=tmp_path / "rm", calibration_pairs=6)
    hand = RewardEnsemble.calibrated(members, [p.prompt for p in train[:6]] * 2,
                                     [p.chosen for p in train[:6]] + [p.rejected for p in train[:6]])
    assert metrics["heldout_pairwise_accuracy"] == pytest.approx(pairwise_accuracy(hand, held_out))
    assert metrics["members_heldout_pairwise_accuracy"] == pytest.approx([pairwise_accuracy(m, held_out) for m in members])
    assert metrics["name"] == "a + b + c" and metrics["train_time_s"] == 15.0
    assert metrics["train_pairs_per_s"] == pytest.approx(1 / (1 / 2 + 1 / 4 + 1 / 4))
    loaded = RewardEnsemble.from_pretrained(tmp_path / "rm")
    np.testing.assert_allclose(loaded.score(*rows(5, 6)), hand.score(*rows(5, 6)), atol=1e-5)
    with pytest.raises(ModelLoadError, match="no such file") as error:
        combine_reward_models([paths[0], tmp_path / "missing"], train, held_out)
    assert "\n" not in str(error.value)
