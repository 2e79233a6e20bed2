"""Linear-probe reward models on tiny random BERT and Llama backbones: the features are what the cut model's
head reads, the fit is Bradley-Terry (logistic regression on differences) with the layer chosen by
cross-validation, the saved model scores as the features predict; and SmolLM2 on real HH pairs."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import cue_pairs

from restlm.data.examples import Example
from restlm.data.location import data_root
from restlm.data.preferences import read_preferences
from restlm.reward_models import RewardModel, pairwise_accuracy
from restlm.reward_models.commands import main_reward_model
from restlm.reward_models.fitting import both_responses
from restlm.reward_models.probe import (
    ProbeFit,
    apply_probe,
    default_layers,
    fit_probe,
)
from restlm.reward_models.probe_features import layer_features
from restlm.reward_models.probe_runs import nested_cv, run_probe_model
from restlm.rewards import build_reward


def test_default_layers_are_spread_and_end_at_the_full_backbone():
    assert default_layers(6) == [1, 2, 3, 4, 5, 6]
    assert default_layers(30) == [3, 6, 9, 12, 15, 18, 21, 24, 27, 30]
    assert default_layers(2, tried=1) == [2]


@pytest.mark.parametrize("which", ["bert", "llama"])
def test_features_are_what_the_cut_models_head_reads(which, reward_bert_dir, reward_llama_dir):
    folder = reward_bert_dir if which == "bert" else reward_llama_dir
    prompts, responses = ["the cat sat on the mat", "a"], ["red dog ran", "big fast car on the road"]
    features = layer_features(RewardModel.from_pretrained(str(folder)), prompts, responses, [1, 2], batch_size=1)
    for layer in (1, 2):
        rm = RewardModel.from_pretrained(str(folder))
        weights = np.random.default_rng(layer).normal(size=features[layer].shape[1])
        apply_probe(rm, ProbeFit(layer, weights, 1.0, 0.5))
        assert rm.model.config.num_hidden_layers == layer
        # padded together (batch of 2) against one at a time above: the head reads the last real token
        assert rm.score(prompts, responses, batch_size=2) == pytest.approx(features[layer] @ weights, abs=1e-4)


def test_fit_is_logistic_regression_on_differences_and_picks_the_informative_layer():
    rng = np.random.default_rng(0)
    n, width = 200, 4
    noise = {1: rng.normal(size=(n, width)), 2: rng.normal(size=(n, width))}
    signal = rng.normal(size=(n, width))
    signal[:, 0] += 3.0  # layer 2's first feature tells chosen from rejected
    chosen, rejected = {1: noise[1], 2: signal * np.array([10.0, 1, 1, 1])}, {1: rng.normal(size=(n, width)),
                                                                             2: np.zeros((n, width))}
    fit = fit_probe(chosen, rejected, folds=5)
    assert fit.layer == 2
    assert fit.cv_accuracy_by_layer[2] > 0.9 and fit.cv_accuracy_by_layer[1] < 0.7
    diff = chosen[2] - rejected[2]
    scale = diff.std(axis=0)
    standardised = fit.weights * scale  # the weights come back on the raw scale: feature 0's is 10x smaller
    assert standardised[0] > 3 * np.abs(standardised[1:]).max()
    # the same fit by hand: the weights minimise the penalised Bradley-Terry loss (both copies of each pair)

    def objective(w):  # sklearn's: 0.5 |v|^2 + C * sum of log-losses over both copies, v = w * scale
        z = diff @ w
        return 0.5 * np.sum((w * scale) ** 2) + fit.c * 2 * np.sum(np.logaddexp(0, -z))
    best = objective(fit.weights)
    for step in (1e-3, -1e-3):
        for i in range(width):
            moved = fit.weights.copy()
            moved[i] += step / scale[i]
            assert objective(moved) >= best - 1e-6


def test_fit_refuses_too_few_pairs():
    with pytest.raises(ValueError, match="too few"):
        fit_probe({1: np.zeros((6, 2))}, {1: np.zeros((6, 2))}, folds=5)


def test_probe_learns_a_cue_saves_and_is_a_reward(reward_bert_dir, tmp_path):
    train, held_out = cue_pairs(120, seed=0), cue_pairs(40, seed=1)
    metrics = run_probe_model(str(reward_bert_dir), train, held_out, folds=4, out=tmp_path / "rm", nested_folds=3)
    assert metrics["heldout_pairwise_accuracy"] == pytest.approx(metrics["heldout_pairwise_accuracy_from_features"])
    assert metrics["heldout_pairwise_accuracy"] >= 0.8
    probe = metrics["probe"]
    assert probe["layer"] in (1, 2) and set(probe["cv_accuracy_by_layer"]) == {"1", "2"}
    assert probe["nested_cv"]["pairs"] == 160 and len(probe["nested_cv"]["layers_chosen"]) == 3
    assert probe["nested_cv"]["accuracy"] >= 0.75
    saved = RewardModel.from_pretrained(str(tmp_path / "rm"))
    assert saved.model.config.num_hidden_layers == probe["layer"]
    assert pairwise_accuracy(saved, held_out) == metrics["heldout_pairwise_accuracy"]
    assert json.loads((tmp_path / "rm" / "metrics.json").read_text())["probe"]["c"] == probe["c"]
    # as a policy's reward: the saved model's own scores, chosen above rejected on most held-out pairs
    reward = build_reward(f"reward_model:{tmp_path / 'rm'}")
    examples = [Example(text=p.prompt) for p in held_out]
    chosen = reward(None, examples, [p.chosen for p in held_out])
    rejected = reward(None, examples, [p.rejected for p in held_out])
    np.testing.assert_allclose(chosen, saved.score(*both_responses(held_out))[: len(held_out)], atol=1e-5)
    assert np.mean(chosen > rejected) == pytest.approx(metrics["heldout_pairwise_accuracy"])


def probe_command(model_dir, tmp_path, pairs, *flags: str) -> int:
    """`restlm reward-model --probe` on `pairs` written as JSONL, saving to tmp_path/rm; its exit code."""
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps({"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected}) + "\n"
                            for p in pairs))
    return main_reward_model(["--model", str(model_dir), "--data", str(data), "--probe", "--out", str(tmp_path / "rm"),
                              *flags])


def test_cli_probe_with_layers(reward_llama_dir, tmp_path, capsys):
    code = probe_command(reward_llama_dir, tmp_path, cue_pairs(60, seed=2), "--eval-pairs", "20", "--probe-layers", "2")
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["probe"]["layer"] == 2 and printed["train_pairs"] == 40


def test_cli_probe_refuses_a_layer_out_of_range(reward_llama_dir, tmp_path, capsys):
    code = probe_command(reward_llama_dir, tmp_path, cue_pairs(30, seed=2), "--eval-pairs", "10", "--probe-layers", "3")
    assert code != 0
    assert "--probe-layers" in capsys.readouterr().err
    assert not (tmp_path / "rm").exists()
    # 10 training pairs cannot make 8 folds of two pairs or more: one line, no model
    code = probe_command(reward_llama_dir, tmp_path, cue_pairs(20, seed=2), "--eval-pairs", "10", "--probe-folds", "8")
    assert code != 0 and "too few" in capsys.readouterr().err
    assert not (tmp_path / "rm").exists()


@pytest.mark.real
def test_smollm2_probe_on_real_hh_pairs(tmp_path):
    """SmolLM2's last layers on 64 real pairs: a fit that beats chance in cross-validation is not asked
    for (64 pairs are too few); the saved 2-layer model must score as its features predict."""
    pairs = read_preferences(data_root() / "hh_rlhf" / "helpful_base_pairs.jsonl", limit=80)
    metrics = run_probe_model("smollm2", pairs[:64], pairs[64:], layers=[2], folds=4, max_length=96,
                              out=tmp_path / "rm")
    assert metrics["probe"]["layer"] == 2
    assert metrics["heldout_pairwise_accuracy"] == pytest.approx(metrics["heldout_pairwise_accuracy_from_features"])
    saved = RewardModel.from_pretrained(str(tmp_path / "rm"))
    assert saved.kind == "causal" and saved.model.config.num_hidden_layers == 2
    scores = saved.score([pairs[0].prompt] * 2, [pairs[0].chosen, pairs[0].rejected])
    assert np.all(np.isfinite(scores)) and scores[0] != scores[1]
    assert torch.is_tensor(saved.model.score.weight)


def test_nested_cv_of_an_ensemble_combines_members_as_a_saved_ensemble_does():
    """Two members, each seeing one of two independent signals: together they rank better than either."""
    rng = np.random.default_rng(3)
    n = 600
    signal = rng.normal(size=(n, 2)) + np.array([0.8, 0.8])  # chosen - rejected, along each member's own feature
    members = []
    for j in range(2):
        chosen = np.column_stack([signal[:, j], rng.normal(size=n)])
        members.append(({1: chosen}, {1: np.zeros((n, 2))}))
    alone = [nested_cv([m], outer=3, inner=3)["accuracy"] for m in members]
    together = nested_cv(members, outer=3, inner=3)
    # one signal: P(N(0.8, 1) > 0) = 0.788; the two summed: P(N(1.6, 2) > 0) = 0.871
    assert max(alone) < 0.83 and together["accuracy"] == pytest.approx(0.871, abs=0.03)
    assert together["layers_chosen"] == [[1, 1, 1], [1, 1, 1]] and together["pairs"] == n
    assert nested_cv([members[0]], outer=3, inner=3)["layers_chosen"] == [1, 1, 1]
