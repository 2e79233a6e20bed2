"""The BC loss against a hand value; rewards by name ('nll', 'correct', 'model:PATH'), a
'module:function' reward and a plain callable through build_reward, checked against the tiny
model's own logits; unknown or unimportable rewards as ConfigError naming rest.reward."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from accelerate import Accelerator

from restlm.data.examples import Example
from restlm.errors import ConfigError
from restlm.losses import LOSSES, bc_loss
from restlm.policies.classifier import ClassifierPolicy
from restlm.rewards import Reward, build_reward


@pytest.fixture(scope="module")
def policy(tiny_model_dir):
    return ClassifierPolicy.from_pretrained(str(tiny_model_dir), Accelerator(), max_length=32, batch_size=4)


@pytest.fixture(scope="module")
def examples(tiny_data):
    return [Example(a, b, c) for a, b, c in tiny_data["dev_rows"][:6]]


def hand_log_softmax(policy, examples):
    """log softmax of the model's logits, one example at a time (no padding)."""
    model = policy.unwrapped.eval()
    rows = []
    with torch.no_grad():
        for e in examples:
            batch = policy.tokenizer(e.text, e.text_pair, return_tensors="pt")
            rows.append(torch.log_softmax(model(**batch).logits[0].double(), -1))
    return torch.stack(rows).numpy()


def test_bc_loss_by_hand():
    log_probs = torch.tensor([-0.5, -1.0, -2.0])
    weights = torch.tensor([1.0, 0.0, 2.0])
    # -(1 * -0.5 + 0 * -1 + 2 * -2) / (1 + 0 + 2) = 4.5 / 3
    assert bc_loss(log_probs, weights).item() == pytest.approx(1.5)
    assert bc_loss(log_probs, torch.ones(3)).item() == pytest.approx(3.5 / 3)
    assert bc_loss(log_probs, torch.zeros(3)).item() == 0.0  # an all-zero-weight shard adds nothing
    assert LOSSES["bc"] is bc_loss


def test_bc_loss_gradient_is_weighted():
    log_probs = torch.tensor([-0.5, -1.0, -2.0], requires_grad=True)
    bc_loss(log_probs, torch.tensor([1.0, 0.0, 3.0])).backward()
    assert log_probs.grad.tolist() == pytest.approx([-0.25, 0.0, -0.75])


def test_nll_reward_is_minus_log_softmax(policy, examples):
    expected = hand_log_softmax(policy, examples)
    outputs = [0, 1, 1, 0, 1, 0]
    reward = build_reward("nll")
    assert reward.higher_is_better is False
    nll = reward(policy, examples, outputs)
    assert nll.dtype == np.float64 and nll.shape == (6,)
    np.testing.assert_allclose(nll, -expected[np.arange(6), outputs], rtol=1e-5, atol=1e-6)
    assert (nll > 0).all()


def test_normalised_nll_is_the_label_probability(policy, examples):
    reward = build_reward("nll", normalise=True)
    assert reward.higher_is_better is True
    p0 = reward(policy, examples, [0] * 6)
    p1 = reward(policy, examples, [1] * 6)
    assert ((p0 >= 0) & (p0 <= 1)).all()
    np.testing.assert_allclose(p0 + p1, 1.0, rtol=1e-5)
    np.testing.assert_allclose(p0, np.exp(-build_reward("nll")(policy, examples, [0] * 6)), rtol=1e-12)


def test_correct_reward(policy, examples):
    gold = [e.label for e in examples]
    outputs = [gold[0], 1 - gold[1], gold[2], 1 - gold[3], gold[4], gold[5]]
    expected = [1.0, 0.0, 1.0, 0.0, 1.0, 1.0]
    assert build_reward("correct")(policy, examples, outputs).tolist() == expected
    assert build_reward("correct", normalise=True)(policy, examples, outputs).tolist() == expected


def test_model_reward_is_the_judge_probability(policy, examples, tiny_model_dir):
    # the judge is the same saved weights as the policy, so it scores exp(-NLL) of the policy
    reward = build_reward(f"model:{tiny_model_dir}")
    assert reward.higher_is_better
    outputs = [1, 0, 1, 0, 1, 0]
    expected = np.exp(hand_log_softmax(policy, examples))[np.arange(6), outputs]
    np.testing.assert_allclose(reward(None, examples, outputs), expected, rtol=1e-5)


def test_module_function_reward(policy, examples, tmp_path, monkeypatch):
    (tmp_path / "tiny_reward_mod.py").write_text(
        "def length_reward(examples, outputs):\n"
        "    return [len(e.text.split()) + 10 * o for e, o in zip(examples, outputs)]\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reward = build_reward("tiny_reward_mod:length_reward")
    outputs = [0, 1, 0, 1, 0, 1]
    raw = np.array([len(e.text.split()) + 10 * o for e, o in zip(examples, outputs)], dtype=float)
    assert reward.name == "length_reward" and reward.higher_is_better
    assert reward(policy, examples, outputs).tolist() == raw.tolist()
    # normalised without a known map: min-max to [0, 1]
    scaled = build_reward("tiny_reward_mod:length_reward", normalise=True)(policy, examples, outputs)
    np.testing.assert_allclose(scaled, (raw - raw.min()) / (raw.max() - raw.min()))


def test_plain_callable_reward(examples):
    def agrees_with_gold(examples, outputs):
        return [2.0 if o == e.label else -1.0 for e, o in zip(examples, outputs)]

    reward = build_reward(agrees_with_gold)
    assert reward.name == "agrees_with_gold"
    gold = [e.label for e in examples]
    assert reward(None, examples, gold).tolist() == [2.0] * 6
    assert reward(None, examples, [1 - g for g in gold]).tolist() == [-1.0] * 6
    ready = Reward("mine", lambda p, e, o: [0.0] * len(o), higher_is_better=False)
    assert build_reward(ready) is ready


@pytest.mark.parametrize("spec, words", [
    ("blue", "unknown reward 'blue'"),
    ("no_such_module_xyz:fn", "cannot import reward function"),
    ("restlm.rewards:no_such_fn", "cannot import reward function"),
])
def test_bad_reward_names(spec, words):
    with pytest.raises(ConfigError) as caught:
        build_reward(spec)
    assert caught.value.key == "rest.reward" and words in str(caught.value)
