"""The features a probe reads beyond its head's input (restlm.reward_models.probe_features), each against the
same quantity computed by hand from the HF model on tiny random BERT and Llama backbones."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from restlm.reward_models import RewardModel
from restlm.reward_models.probe import fit_probe
from restlm.reward_models.probe_features import (
    layer_features,
    probe_candidates,
    probe_features,
)

PROMPTS = ["the cat sat on the mat", "a", "the dog ran in the park and the bird"]
RESPONSES = ["red dog ran", "big fast car on the road", "no"]


def test_response_mask_marks_the_responses_tokens(reward_llama_dir, reward_bert_dir):
    causal = RewardModel.from_pretrained(str(reward_llama_dir))
    batch, response = causal.encode_marking_responses(PROMPTS, RESPONSES)
    for row, text in enumerate(RESPONSES):
        ids = causal.tokenizer(text, add_special_tokens=False)["input_ids"]
        assert batch["input_ids"][row][response[row].bool()].tolist() == ids
    encoder = RewardModel.from_pretrained(str(reward_bert_dir))
    batch, response = encoder.encode_marking_responses(PROMPTS, RESPONSES)
    for row, text in enumerate(RESPONSES):  # the response segment, its closing [SEP] not included
        ids = encoder.tokenizer(text, add_special_tokens=False)["input_ids"]
        assert batch["input_ids"][row][response[row].bool()].tolist() == ids
    assert causal.encode(PROMPTS, RESPONSES)["input_ids"].tolist() == \
        causal.encode_marking_responses(PROMPTS, RESPONSES)[0]["input_ids"].tolist()


@pytest.mark.parametrize("which", ["bert", "llama"])
def test_mean_is_the_mean_state_over_the_response_and_last_is_layer_features(which, reward_bert_dir,
                                                                            reward_llama_dir):
    rm = RewardModel.from_pretrained(str(reward_bert_dir if which == "bert" else reward_llama_dir))
    features = probe_features(rm, PROMPTS, RESPONSES, [1, 2], pools=("last", "mean"), scalars=("length",),
                              batch_size=2)
    last = layer_features(rm, PROMPTS, RESPONSES, [1, 2], batch_size=3)
    for layer in (1, 2):
        assert features[f"last@{layer}"] == pytest.approx(last[layer], abs=1e-5)
    for row in range(len(PROMPTS)):  # one row alone: no padding
        batch, response = rm.encode_marking_responses(PROMPTS[row : row + 1], RESPONSES[row : row + 1])
        with torch.no_grad():
            hidden = rm.model.base_model(**batch, output_hidden_states=True).hidden_states
        for layer in (1, 2):
            states = hidden[layer][0]
            if which == "llama" and layer == 1:  # the final norm, as the head would read a cut backbone
                states = rm.model.base_model.norm(states)
            expected = states[response[0].bool()].mean(0).detach().numpy()
            assert features[f"mean@{layer}"][row] == pytest.approx(expected, abs=1e-5)
        assert features["length"][row, 0] == pytest.approx(np.log1p(int(response.sum())))


def test_logp_is_the_language_models_log_probability_of_the_response(tied_llama_dir):
    from transformers import LlamaForCausalLM

    rm = RewardModel.from_pretrained(str(tied_llama_dir))
    features = probe_features(rm, PROMPTS, RESPONSES, [2], pools=(), scalars=("logp",), batch_size=2)
    lm = LlamaForCausalLM.from_pretrained(str(tied_llama_dir)).eval()
    for row in range(len(PROMPTS)):
        batch, response = rm.encode_marking_responses(PROMPTS[row : row + 1], RESPONSES[row : row + 1])
        with torch.no_grad():
            log_probs = lm(**batch).logits[0].log_softmax(-1)
        ids, where = batch["input_ids"][0], response[0].nonzero()[:, 0]
        expected = sum(log_probs[t - 1, ids[t]].item() for t in where.tolist())
        assert features["logp"][row] == pytest.approx([expected, expected / len(where)], abs=1e-4)


def test_logp_is_refused_without_a_tied_language_model_head(reward_bert_dir, reward_llama_dir):
    for folder in (reward_bert_dir, reward_llama_dir):
        with pytest.raises(ValueError, match="tie_word_embeddings"):
            probe_features(RewardModel.from_pretrained(str(folder)), PROMPTS, RESPONSES, [1], scalars=("logp",))
    with pytest.raises(ValueError, match="unknown probe features"):
        probe_features(RewardModel.from_pretrained(str(reward_bert_dir)), PROMPTS, RESPONSES, [1], pools=("max",))


def test_candidates_lay_features_side_by_side_and_the_fit_chooses_among_them():
    rng = np.random.default_rng(0)
    n = 200
    features = {"last@1": rng.normal(size=(n, 3)), "mean@1": rng.normal(size=(n, 2)),
                "last@2": rng.normal(size=(n, 3)), "mean@2": rng.normal(size=(n, 2)), "length": rng.normal(size=(n, 1))}
    sets = probe_candidates(features, [1, 2], ("last", "mean"), ("length",))
    assert list(sets) == ["last+mean@1+length", "last+mean@2+length"]
    assert sets["last+mean@2+length"].shape == (n, 6)
    assert np.array_equal(sets["last+mean@2+length"][:, 3:5], features["mean@2"])
    assert list(probe_candidates(features, [1, 2], (), ("length",))) == ["length"]
    chosen = {name: rng.normal(size=(n, 6)) for name in sets}
    rejected = {name: rng.normal(size=(n, 6)) for name in sets}
    chosen["last+mean@2+length"][:, 5] += 3.0  # the length column of layer 2's set tells the pairs apart
    fit = fit_probe(chosen, rejected, folds=5)
    assert fit.layer == "last+mean@2+length" and fit.cv_accuracy > 0.9
    same = {"b": chosen["last+mean@1+length"], "a": chosen["last+mean@1+length"]}
    assert fit_probe(same, {k: rejected["last+mean@1+length"] for k in same}, folds=5).layer == "b"  # the first


def test_cached_arrays_are_read_back_for_the_same_key_and_recomputed_for_another(tmp_path):
    from restlm.reward_models.probe_runs import cached_arrays

    calls = []

    def compute():
        calls.append(1)
        return {"a": np.arange(3.0) + len(calls)}
    cache = tmp_path / "f.npz"
    first, seconds = cached_arrays(cache, ["rows", "x"], compute)
    again, seconds_again = cached_arrays(cache, ["rows", "x"], compute)
    assert len(calls) == 1 and np.array_equal(first["a"], again["a"]) and seconds_again == seconds
    other, _ = cached_arrays(cache, ["rows", "y"], compute)
    assert len(calls) == 2 and other["a"].tolist() == [2.0, 3.0, 4.0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.npz"]  # no part file left behind


def test_a_probe_on_a_feature_set_is_not_saved_as_a_classifier(reward_bert_dir):
    from restlm.reward_models.probe import ProbeFit, apply_probe

    with pytest.raises(ValueError, match="only a probe of one layer's head input"):
        apply_probe(RewardModel.from_pretrained(str(reward_bert_dir)), ProbeFit("last+mean@1", np.zeros(4), 1.0, 0.5))
