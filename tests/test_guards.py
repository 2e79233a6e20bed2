"""Guards against reward over-optimisation, against hand values: distinct-n, the mean token entropy
(uniform next-token distributions give log V; a causal policy matches a hand forward pass; seq2seq
works), the KL to a reference from per-sequence log-probs, and the proxy-up-gold-down flags."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from accelerate import Accelerator
from tiny_models import tiny_llama, tiny_tokenizer

from restlm.data.examples import Example
from restlm.errors import RestlmError
from restlm.guards import (
    distinct_n,
    exact_kl_to_reference,
    kl_estimates,
    flag_divergence,
    kl_to_reference,
    mean_token_entropy,
)
from restlm.policies.causal import CausalLMPolicy

PROMPTS = [Example("the cat sat", uid="0"), Example("a dog ran in the park", uid="1"), Example("Yes", uid="2")]
OUTPUTS = ["the cat", "a dog ran", ""]


def causal_policy() -> CausalLMPolicy:
    tok = tiny_tokenizer()
    return CausalLMPolicy(tiny_llama(len(tok)), tok, Accelerator(), prompt_template="Say: {text}", max_new_tokens=8)


def test_distinct_n_by_hand():
    samples = ["a b a b", "a b c"]
    assert distinct_n(samples, 1) == pytest.approx(3 / 7)  # a, b, c among 7 words
    assert distinct_n(samples, 2) == pytest.approx(3 / 5)  # ab, ba, bc among ab ba ab ab bc
    assert distinct_n(samples, 4) == 1.0  # the one 4-gram
    assert distinct_n(samples, 5) == 0.0 and distinct_n([], 1) == 0.0
    assert distinct_n(["same words", "same words"], 2) == 0.5
    with pytest.raises(RestlmError, match="n >= 1"):
        distinct_n(samples, 0)


def test_flag_divergence_by_hand():
    proxy = [0.1, 0.2, 0.3, 0.25, 0.4, 0.4]
    gold = [0.5, 0.6, 0.55, 0.5, 0.45, 0.3]
    # step 2: proxy up, gold down; step 3: proxy down; step 4: both ways again; step 5: proxy flat
    assert flag_divergence(proxy, gold) == [False, False, True, False, True, False]
    assert flag_divergence([], []) == []
    with pytest.raises(RestlmError, match="proxy has 2 steps but gold has 3"):
        flag_divergence([1.0, 2.0], [1.0, 2.0, 3.0])


class FixedLogProbs:
    """A stand-in policy whose log_probs are given."""

    def __init__(self, values):
        self.values = np.array(values, dtype=np.float64)

    def log_probs(self, examples, outputs):
        return self.values


def test_kl_to_reference_by_hand():
    # (-1 - -1.5 + -2 - -1) / 2 = (0.5 - 1) / 2
    assert kl_to_reference(FixedLogProbs([-1, -2]), FixedLogProbs([-1.5, -1]), PROMPTS[:2], OUTPUTS[:2]) == -0.25
    policy = causal_policy()
    assert kl_to_reference(policy, policy, PROMPTS, OUTPUTS) == 0.0
    with pytest.raises(RestlmError, match="at least one"):
        kl_to_reference(policy, policy, [], [])


def test_uniform_next_tokens_have_entropy_log_v():
    policy = causal_policy()
    with torch.no_grad():
        policy.unwrapped.lm_head.weight.zero_()  # every logit 0: a uniform next token
    vocab = policy.unwrapped.config.vocab_size
    assert mean_token_entropy(policy, PROMPTS, OUTPUTS, batch_size=2) == pytest.approx(math.log(vocab), rel=1e-6)


def test_token_entropy_matches_a_hand_forward_pass():
    policy = causal_policy()
    entropies = []
    for example, output in zip(PROMPTS, OUTPUTS):
        prompt = policy.prompt_ids(example)
        out = policy.output_ids(output)
        with torch.no_grad():
            logits = policy.unwrapped(torch.tensor([prompt + out])).logits[0]
        for j in range(len(out)):  # position len(prompt) - 1 + j predicts output token j
            p = torch.softmax(logits[len(prompt) - 1 + j], -1)
            entropies.append(-(p * p.log()).sum().item())
    assert mean_token_entropy(policy, PROMPTS, OUTPUTS) == pytest.approx(np.mean(entropies), rel=1e-5)


def test_seq2seq_entropy_and_unsupported_kinds():
    from tiny_models import tiny_seq2seq_policy as seq2seq_policy

    policy = seq2seq_policy()
    with torch.no_grad():
        policy.unwrapped.lm_head.weight.zero_()
    vocab = policy.unwrapped.config.vocab_size
    assert mean_token_entropy(policy, PROMPTS, OUTPUTS) == pytest.approx(math.log(vocab), rel=1e-6)
    with pytest.raises(RestlmError, match="causal or seq2seq"):
        mean_token_entropy(type("Classifier", (), {"kind": "classifier"})(), PROMPTS, OUTPUTS)
    with pytest.raises(RestlmError, match="3 examples but 2 outputs"):
        mean_token_entropy(policy, PROMPTS, OUTPUTS[:2])


def test_exact_kl_matches_a_hand_forward_pass_and_is_never_negative():
    policy, reference = causal_policy(), causal_policy()
    with torch.no_grad():  # another reference: its weights moved
        for param in reference.unwrapped.parameters():
            param.add_(0.05 * torch.randn_like(param))
    per_sample = []
    for example, output in zip(PROMPTS, OUTPUTS):
        prompt, out = policy.prompt_ids(example), policy.output_ids(output)
        with torch.no_grad():
            p_logits, q_logits = (m.unwrapped(torch.tensor([prompt + out])).logits[0] for m in (policy, reference))
        kl = 0.0
        for j in range(len(out)):  # position len(prompt) - 1 + j predicts output token j
            log_p = torch.log_softmax(p_logits[len(prompt) - 1 + j], -1)
            log_q = torch.log_softmax(q_logits[len(prompt) - 1 + j], -1)
            kl += (log_p.exp() * (log_p - log_q)).sum().item()
        per_sample.append(kl)
    assert min(per_sample) > 0
    value = exact_kl_to_reference(policy, reference, PROMPTS, OUTPUTS, batch_size=2)
    assert value == pytest.approx(np.mean(per_sample), rel=1e-5)
    assert exact_kl_to_reference(policy, policy, PROMPTS, OUTPUTS) == pytest.approx(0.0, abs=1e-6)
    # the sampled estimate from the same pass is kl_to_reference's (each policy's own log_probs)
    _, sampled = kl_estimates(policy, reference, PROMPTS, OUTPUTS, batch_size=2)
    # (batched differently: its log-probs differ by padding, about 1e-6 each)
    assert sampled == pytest.approx(kl_to_reference(policy, reference, PROMPTS, OUTPUTS), abs=1e-5)
    with pytest.raises(RestlmError, match="at least one"):
        exact_kl_to_reference(policy, reference, [], [])


def test_exact_kl_of_classifiers_over_the_labels(tiny_model_dir):
    from restlm.policies.classifier import ClassifierPolicy

    policy = ClassifierPolicy.from_pretrained(str(tiny_model_dir), Accelerator())
    reference = ClassifierPolicy.from_pretrained(str(tiny_model_dir), Accelerator())
    with torch.no_grad():
        reference.unwrapped.classifier.bias.add_(torch.tensor([0.7, -0.3]))
    examples = [Example("a cat sat", "the cat sat", uid="0"), Example("dogs run", "birds fly", uid="1")]
    log_p, log_q = (torch.log_softmax(m.logits(examples), -1) for m in (policy, reference))
    by_hand = (log_p.exp() * (log_p - log_q)).sum(-1).mean().item()
    assert by_hand > 0
    assert exact_kl_to_reference(policy, reference, examples, [0, 1]) == pytest.approx(by_hand, rel=1e-6)
    _, sampled = kl_estimates(policy, reference, examples, [0, 1])
    assert sampled == pytest.approx(kl_to_reference(policy, reference, examples, [0, 1]), rel=1e-6)


def test_the_report_names_the_kl_of_old_records():
    from restlm.compare.report import _kl_estimator
    from restlm.compare.summary import kl_estimator

    assert kl_estimator([{"kl": 0.1, "kl_sampled": -0.2}, {"kl": 0.0, "kl_sampled": 0.0}]) == "exact"
    assert kl_estimator([{"kl": 0.1, "kl_sampled": -0.2}, {"kl": -0.05}]) == "sampled"  # a record before session 19
    assert _kl_estimator({"methods": [{"kl_estimator": "exact"}, {}]}) == "sampled"
