"""Bradley-Terry reward models on tiny random BERT and Llama backbones: the loss against hand values,
the inputs (text pair / one sequence, prompt cut from the left), scores that do not depend on
batching, training that learns a cue and changes every trainable tensor, LoRA merged on save,
the `reward_model:` and `sentiment:` reward specs, one-line load errors; and MiniLM on real HH pairs."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from helpers import build_tiny_bert, cue_pairs
from transformers import AutoModelForSequenceClassification

from restlm.data.examples import Example
from restlm.data.location import data_root
from restlm.data.preferences import read_preferences
from restlm.errors import ModelLoadError
from restlm.reward_models import (
    RewardModel,
    RewardTrainConfig,
    bradley_terry_loss,
    pairwise_accuracy,
    train_reward_model,
)
from restlm.reward_models.model import SAVED_KEY
from restlm.rewards import build_reward


def test_bradley_terry_loss_matches_hand_values():
    chosen, rejected = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0])
    # -log sigmoid(1) = log(1 + e^-1) = 0.3132617; -log sigmoid(-2) = log(1 + e^2) = 2.1269280
    assert bradley_terry_loss(chosen, rejected).item() == pytest.approx((0.3132617 + 2.1269280) / 2, abs=1e-6)
    assert bradley_terry_loss(chosen, rejected, margin=torch.tensor([1.0, 0.0])).item() == pytest.approx(
        (math.log(2) + 2.1269280) / 2, abs=1e-6)
    assert bradley_terry_loss(torch.zeros(3), torch.zeros(3)).item() == pytest.approx(math.log(2))


def test_encoder_input_is_a_text_pair_with_the_prompt_cut_from_the_left(reward_bert_dir):
    rm = RewardModel.from_pretrained(str(reward_bert_dir), max_length=16)
    assert rm.kind == "encoder"
    prompt, response = "the cat sat on the mat in the house under the tree", "red dog ran fast on the road and the car"
    batch = rm.encode([prompt, "a"], [response, "big"])
    tokens = rm.tokenizer.convert_ids_to_tokens(batch["input_ids"][0])
    # 13 text tokens fit; the response keeps its first 3/4 (9), the prompt its last 4
    assert tokens == ["[CLS]", "house", "under", "the", "tree", "[SEP]",
                      "red", "dog", "ran", "fast", "on", "the", "road", "and", "the", "[SEP]"]
    assert batch["token_type_ids"][0].tolist() == [0] * 6 + [1] * 10
    assert rm.tokenizer.convert_ids_to_tokens(batch["input_ids"][1])[:5] == ["[CLS]", "a", "[SEP]", "big", "[SEP]"]
    assert batch["attention_mask"][1].tolist() == [1] * 5 + [0] * 11


def test_causal_input_keeps_the_prompt_end_and_the_response_start(reward_llama_dir):
    rm = RewardModel.from_pretrained(str(reward_llama_dir), max_length=12)
    assert rm.kind == "causal" and rm.model.config.pad_token_id == rm.tokenizer.pad_token_id
    tok = rm.tokenizer
    prompt, response = "the cat sat on the mat", "the dog ran in the park and the bird flew"
    p, r = tok(prompt, add_special_tokens=False)["input_ids"], tok(response, add_special_tokens=False)["input_ids"]
    assert len(r) > 9 and len(p) > 3
    batch = rm.encode([prompt, "Yes"], [response, "No"])
    assert batch["input_ids"][0].tolist() == p[-3:] + r[:9]
    short = tok("Yes", add_special_tokens=False)["input_ids"] + tok("No", add_special_tokens=False)["input_ids"]
    assert batch["input_ids"][1, : len(short)].tolist() == short
    assert batch["attention_mask"][1].tolist() == [1] * len(short) + [0] * (12 - len(short))


@pytest.mark.parametrize("kind", ["encoder", "causal"])
def test_scores_do_not_depend_on_batching_or_padding(kind, reward_bert_dir, reward_llama_dir):
    rm = RewardModel.from_pretrained(str(reward_bert_dir if kind == "encoder" else reward_llama_dir), max_length=32)
    pairs = cue_pairs(5, seed=0)
    prompts, responses = [p.prompt for p in pairs], [p.chosen for p in pairs]
    together = rm.score(prompts, responses, batch_size=5)
    alone = np.array([rm.score([a], [b])[0] for a, b in zip(prompts, responses)])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    assert np.ptp(together) > 0  # different inputs, different rewards: the check above can fail


def test_training_learns_the_cue_and_changes_every_tensor_but_the_bias(reward_bert_dir):
    rm = RewardModel.from_pretrained(str(reward_bert_dir), max_length=32)
    before = {n: p.detach().clone() for n, p in rm.model.named_parameters()}
    held_out = cue_pairs(24, seed=1)
    start_accuracy = pairwise_accuracy(rm, held_out)
    stats = train_reward_model(rm, cue_pairs(48, seed=0), RewardTrainConfig(learning_rate=1e-2, epochs=3, batch_size=8))
    assert stats.steps == 18 and stats.pairs == 144
    assert stats.losses[0] == pytest.approx(math.log(2), abs=0.05) and np.mean(stats.losses[-3:]) < 0.3
    assert pairwise_accuracy(rm, held_out) == 1.0 > start_accuracy
    unchanged = [n for n, p in rm.model.named_parameters() if torch.equal(p, before[n])]
    assert unchanged == ["classifier.bias"]  # r(chosen) - r(rejected) does not depend on it: its gradient is 0


def test_training_is_reproducible_for_a_seed(reward_bert_dir):
    cfg = RewardTrainConfig(learning_rate=1e-2, epochs=1, batch_size=8, seed=5)
    runs = [train_reward_model(RewardModel.from_pretrained(str(reward_bert_dir), max_length=32), cue_pairs(16, 0), cfg)
            for _ in range(2)]
    assert runs[0].losses == runs[1].losses


def test_lora_causal_model_trains_adapters_and_head_and_saves_merged(reward_llama_dir, tmp_path):
    rm = RewardModel.from_pretrained(str(reward_llama_dir), lora={"r": 4, "alpha": 8}, max_length=32)
    trainable = {n: p.detach().clone() for n, p in rm.model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or "score" in n for n in trainable)
    assert any("score" in n for n in trainable)
    pairs = cue_pairs(16, seed=0)
    train_reward_model(rm, pairs, RewardTrainConfig(learning_rate=1e-2, epochs=2, batch_size=8))
    changed = {n for n, p in rm.model.named_parameters() if n in trainable and not torch.equal(p, trainable[n])}
    assert changed == set(trainable)
    rm.save(tmp_path / "rm")
    assert not (tmp_path / "rm" / "adapter_config.json").exists()
    plain = AutoModelForSequenceClassification.from_pretrained(tmp_path / "rm")  # no peft needed
    assert type(plain).__name__ == "LlamaForSequenceClassification"
    assert getattr(plain.config, SAVED_KEY) == {"kind": "causal", "max_length": 32}
    loaded = RewardModel.from_pretrained(str(tmp_path / "rm"))
    assert (loaded.kind, loaded.max_length) == ("causal", 32)
    prompts, responses = [p.prompt for p in pairs], [p.rejected for p in pairs]
    np.testing.assert_allclose(loaded.score(prompts, responses), rm.score(prompts, responses), atol=1e-4)


def test_reward_model_spec_scores_prompt_and_output(reward_bert_dir, tmp_path):
    rm = RewardModel.from_pretrained(str(reward_bert_dir), max_length=32)
    train_reward_model(rm, cue_pairs(16, 0), RewardTrainConfig(learning_rate=1e-2, epochs=1, batch_size=8))
    rm.save(tmp_path / "rm")
    reward = build_reward(f"reward_model:{tmp_path / 'rm'}")
    examples = [Example(text="the cat sat"), Example(text="a dog ran in the park")]
    outputs = ["the red car", "a blue bird"]
    np.testing.assert_allclose(reward(None, examples, outputs), rm.score([e.text for e in examples], outputs), atol=1e-5)
    assert reward.name == f"reward_model:{tmp_path / 'rm'}" and reward.higher_is_better


def test_sentiment_spec_is_the_positive_class_logit(tmp_path):
    folder = build_tiny_bert(tmp_path / "sentiment", seed=3, num_labels=2)
    reward = build_reward(f"sentiment:{folder}")
    outputs = ["the red car", "a blue bird sat"]
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    tok = __import__("transformers").AutoTokenizer.from_pretrained(folder)
    with torch.no_grad():
        logits = model(**tok(outputs, padding=True, return_tensors="pt")).logits
    expected = (logits[:, 1] - logits[:, 0]).numpy()
    np.testing.assert_allclose(reward(None, [Example(text="ignored")] * 2, outputs), expected, atol=1e-5)
    np.testing.assert_allclose(reward.normalised()(None, [Example(text="x")] * 2, outputs),
                               torch.softmax(logits, -1)[:, 1].numpy(), atol=1e-5)


def test_load_errors_are_one_line(tmp_path):
    for name, words in [(str(tmp_path / "missing"), "no such file or directory"),
                        (str(build_tiny_bert(tmp_path / "two", num_labels=2)), "2 outputs")]:
        with pytest.raises(ModelLoadError) as info:
            RewardModel.from_pretrained(name)
        assert words in str(info.value) and "\n" not in str(info.value)


@pytest.mark.real
def test_minilm_reward_model_on_real_hh_pairs(tmp_path):
    """A few steps on 48 real pairs: the loss starts near log 2 and moves, and a save round-trips."""
    pairs = read_preferences(data_root() / "hh_rlhf" / "helpful_base_pairs.jsonl", limit=64)
    rm = RewardModel.from_pretrained("minilm", max_length=128)
    head = rm.model.classifier.weight.detach().clone()
    stats = train_reward_model(rm, pairs[:48], RewardTrainConfig(learning_rate=5e-5, batch_size=8))
    assert stats.steps == 6 and all(math.isfinite(v) for v in stats.losses)
    assert abs(stats.losses[0] - math.log(2)) < 0.3 and not torch.equal(rm.model.classifier.weight, head)
    accuracy = pairwise_accuracy(rm, pairs[48:])
    assert 0.0 <= accuracy <= 1.0
    rm.save(tmp_path / "rm")
    loaded = RewardModel.from_pretrained(str(tmp_path / "rm"))
    assert (loaded.kind, loaded.max_length) == ("encoder", 128)
    sample = pairs[48:52]
    np.testing.assert_allclose(loaded.score([p.prompt for p in sample], [p.chosen for p in sample]),
                               rm.score([p.prompt for p in sample], [p.chosen for p in sample]), atol=1e-4)
