"""The KL anchor of the Improve loss (`rest.improve_kl_coef`, `train_policy(kl_coef=)`) on tiny random
models: the per-token KL equals a hand computation from both models' logits (causal and seq2seq); it
is 0 against an identical reference; a large coefficient keeps the trained policy nearer its start
than plain BC; ReST anchors its Improve steps to the policy it started from; classifier policies and
negative coefficients are refused."""
from __future__ import annotations

import pytest
import torch
from accelerate import Accelerator

from restlm.config import RestConfig, TrainConfig
from restlm.data.examples import Example
from restlm.errors import ConfigError
from restlm.policies.base import TrainItem
from restlm.policies.causal import CausalLMPolicy
from restlm.rest import ReST
from restlm.training import train_policy
from tiny_models import tiny_llama, tiny_seq2seq_policy, tiny_tokenizer

EXAMPLES = [Example("the cat sat", uid="0"), Example("a dog ran in the park", uid="1"), Example("Yes", uid="2")]
OUTPUTS = ["Answer: Yes", "the bird flew", "No"]
TRAIN = TrainConfig(batch_size=3, warmup_ratio=0.0, weight_decay=0.0)


def causal_policy(seed: int = 0) -> CausalLMPolicy:
    tok = tiny_tokenizer()
    return CausalLMPolicy(tiny_llama(len(tok), seed), tok, Accelerator(), prompt_template="Say: {text}",
                          max_new_tokens=6, batch_size=4)


@pytest.mark.parametrize("make", [causal_policy, tiny_seq2seq_policy], ids=["causal", "seq2seq"])
def test_kl_per_token_equals_a_hand_computation(make):
    policy, reference = make(seed=0), make(seed=1)
    batch = policy.collate([TrainItem(e, o) for e, o in zip(EXAMPLES, OUTPUTS)])
    values, mask, kl = policy.output_token_log_probs_and_kl(batch, reference)
    logits, labels = policy.output_logits(policy.model, batch)
    ref_logits, _ = reference.output_logits(reference.model, batch)
    p, q = torch.softmax(logits.double(), -1), torch.softmax(ref_logits.double(), -1)
    by_hand = (p * (p.log() - q.log())).sum(-1) * (labels != -100)
    assert torch.allclose(kl.double(), by_hand, atol=1e-5)
    assert (kl[mask] > 0).all() and (kl[~mask] == 0).all()
    # the log-probs are those of the plain path
    plain, plain_mask = policy.output_token_log_probs(batch)
    assert torch.equal(mask, plain_mask) and torch.allclose(values, plain, atol=1e-6)


def test_an_identical_reference_adds_nothing():
    """Against a copy of itself the KL and its gradient are 0: training is exactly plain BC."""
    items = [TrainItem(e, o) for e, o in zip(EXAMPLES, OUTPUTS)]
    anchored, plain = causal_policy(), causal_policy()
    reference = anchored.frozen_copy()
    first = train_policy(anchored, items, TRAIN, 1e-2, 1, seed=0, reference=reference, kl_coef=5.0)
    second = train_policy(plain, items, TRAIN, 1e-2, 1, seed=0)
    assert first.mean_loss == pytest.approx(second.mean_loss, abs=1e-5)
    for (_, a), (_, b) in zip(anchored.model.named_parameters(), plain.model.named_parameters()):
        assert torch.allclose(a, b, atol=1e-6)


def kl_to(policy, reference) -> float:
    batch = policy.collate([TrainItem(e, o) for e, o in zip(EXAMPLES, OUTPUTS)])
    with torch.no_grad():
        return float(policy.output_token_log_probs_and_kl(batch, reference)[2].sum())


def test_a_large_coefficient_keeps_the_policy_near_its_start():
    items = [TrainItem(e, o) for e, o in zip(EXAMPLES, OUTPUTS)] * 4
    anchored, plain = causal_policy(), causal_policy()
    reference = anchored.frozen_copy()
    train_policy(anchored, items, TRAIN, 1e-2, 2, seed=0, reference=reference, kl_coef=100.0)
    train_policy(plain, items, TRAIN, 1e-2, 2, seed=0)
    drift_anchored, drift_plain = kl_to(anchored, reference), kl_to(plain, reference)
    assert drift_plain > 0.5 and drift_anchored < 0.5 * drift_plain
    # and it fitted the outputs less than plain BC did
    assert anchored.log_probs(EXAMPLES, OUTPUTS).sum() < plain.log_probs(EXAMPLES, OUTPUTS).sum()


def rest(policy, tmp_path, kl_coef: float) -> ReST:
    config = RestConfig(grow_steps=2, improve_steps=1, samples_per_input=2, sampling="sample", threshold="rising",
                        thresholds=[0.0], original_data="none", improve_learning_rate=1e-2, improve_kl_coef=kl_coef,
                        guard_samples=0)
    return ReST(policy, lambda examples, outputs: [1.0] * len(outputs), EXAMPLES, lambda p: {"dev_accuracy": 0.0},
                config, TRAIN, run_dir=str(tmp_path / f"run{kl_coef}"))


def test_rest_anchors_every_improve_step_to_its_start(tmp_path, monkeypatch):
    """Both Grow steps' Improve steps get the same frozen reference: the weights ReST started from."""
    policy = causal_policy()
    start = {n: p.detach().clone() for n, p in policy.model.named_parameters()}
    seen = []

    import restlm.rest as rest_module

    def spy(policy, items, cfg, lr, epochs, seed, reference=None, kl_coef=0.0, **kwargs):
        seen.append((reference, kl_coef))
        return train_policy(policy, items, cfg, lr, epochs, seed, reference=reference, kl_coef=kl_coef, **kwargs)

    monkeypatch.setattr(rest_module, "train_policy", spy)
    rest(policy, tmp_path, 0.5).run(grow_size=3)
    assert len(seen) == 2 and seen[0][0] is seen[1][0] and {c for _, c in seen} == {0.5}
    for name, value in seen[0][0].model.named_parameters():
        assert torch.equal(value, start[name]) and not value.requires_grad
    assert any(not torch.equal(p, start[n]) for n, p in policy.model.named_parameters())

    seen.clear()
    rest(causal_policy(), tmp_path, 0.0).run(grow_size=3)
    assert [r for r, _ in seen] == [None, None]


def test_a_classifier_policy_is_refused(tiny_model_dir, tmp_path):
    from restlm.policies.classifier import ClassifierPolicy

    policy = ClassifierPolicy.from_pretrained(str(tiny_model_dir), Accelerator(), max_length=32)
    with pytest.raises(ConfigError, match="improve_kl_coef.*needs a causal or seq2seq policy"):
        rest(policy, tmp_path, 0.1)
    with pytest.raises(ValueError, match="kl_coef needs a generative"):
        train_policy(policy, [], TRAIN, 1e-2, 1, seed=0, reference=policy, kl_coef=0.1)
