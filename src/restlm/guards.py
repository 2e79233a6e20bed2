"""Guards against reward over-optimisation: signs that a policy games its reward.

A policy that games a proxy reward tends to collapse onto few phrasings (distinct-n falls),
grows sure of itself (entropy falls), drifts from where it started (KL to the reference
rises), and its proxy reward keeps rising while a held-out gold metric falls
(`flag_divergence`). Each guard is a plain function of samples or of a policy on samples.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from restlm.data.examples import Example
from restlm.errors import RestlmError
from restlm.policies.base import TrainItem


def distinct_n(samples: Sequence[str], n: int) -> float:
    """Distinct n-grams / all n-grams over whitespace-split samples (Li et al., 2016); 0.0 without any.

    1.0: no n-gram repeats across the samples; near 0: the samples say the same few things.
    """
    if n < 1:
        raise RestlmError(f"distinct-n needs n >= 1, not {n}")
    grams = [tuple(words[i : i + n]) for words in (s.split() for s in samples) for i in range(len(words) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def _output_log_softmax(policies, examples: Sequence[Example], outputs: Sequence[str], batch_size: int):
    """Per batch of the given outputs: each policy's float32 log-softmax of its next-token logits at every
    position (a list, one per policy, each (batch, length, vocab)) and the labels (-100 off the output tokens).
    Each policy runs its own token pass (`output_logits`), without gradients; causal and seq2seq policies."""
    if len(examples) != len(outputs):
        raise RestlmError(f"{len(examples)} examples but {len(outputs)} outputs")
    for policy in policies:
        if getattr(policy, "kind", None) not in ("causal", "seq2seq"):
            raise RestlmError(f"a token pass needs a causal or seq2seq policy, not {getattr(policy, 'kind', policy)!r}")
        policy.unwrapped.eval()
    first = policies[0]
    with torch.no_grad():
        for start in range(0, len(outputs), batch_size):
            items = [TrainItem(e, o) for e, o in zip(examples[start : start + batch_size], outputs[start : start + batch_size])]
            batch = {k: v.to(first.accelerator.device) for k, v in first.collate(items).items()}
            passes = [policy.output_logits(policy.unwrapped, batch) for policy in policies]
            yield [torch.log_softmax(logits.float(), dim=-1) for logits, _ in passes], passes[0][1]


def mean_token_entropy(policy, examples: Sequence[Example], outputs: Sequence[str], batch_size: int = 8) -> float:
    """Mean over all output tokens (EOS included) of the entropy, in nats, of the policy's
    next-token distribution where each token was chosen. Causal and seq2seq policies."""
    total, count = 0.0, 0
    for (log_p,), labels in _output_log_softmax([policy], examples, outputs, batch_size):
        mask = labels != -100
        entropy = -(log_p.exp() * log_p).sum(-1)
        total += entropy[mask].sum().item()
        count += int(mask.sum())
    return total / max(count, 1)


def kl_estimates(policy, reference, examples: Sequence[Example], outputs: Sequence, batch_size: int = 8
                 ) -> tuple[float, float]:
    """(exact, sampled) estimates of KL(policy || reference) from one token pass of each over the given outputs.

    exact: the mean over samples of the sum, over each output's positions (EOS included), of the KL between the
    two next-token distributions there (for a classifier, between the two label distributions of each input).
    sampled: `kl_to_reference`'s mean log-ratio at the sampled tokens (labels). Both are unbiased estimates of the
    sequence-level KL when the outputs were sampled from `policy`, but the exact one sums each position's term
    over the vocabulary rather than reading it at the sampled token: it is never negative and varies far less
    (a sampled log-ratio over a few samples can be below 0)."""
    if not outputs:
        raise RestlmError("KL to the reference needs at least one sample")
    if getattr(policy, "kind", None) == "classifier":
        log_p, log_q = (torch.log_softmax(p.logits(examples).float(), -1) for p in (policy, reference))
        labels = torch.tensor(list(outputs)).unsqueeze(-1)
        sampled = (log_p.gather(-1, labels) - log_q.gather(-1, labels)).mean()
        return float((log_p.exp() * (log_p - log_q)).sum(-1).mean()), float(sampled)
    exact, sampled = [], []
    for (log_p, log_q), labels in _output_log_softmax([policy, reference], examples, outputs, batch_size):
        mask = labels != -100
        exact += ((log_p.exp() * (log_p - log_q)).sum(-1) * mask).sum(-1).tolist()
        sampled += (policy._gather(log_p, labels)[0] - policy._gather(log_q, labels)[0]).sum(-1).tolist()
    return float(np.mean(exact)), float(np.mean(sampled))


def exact_kl_to_reference(policy, reference, examples: Sequence[Example], outputs: Sequence, batch_size: int = 8
                          ) -> float:
    """The exact estimate of `kl_estimates` alone."""
    return kl_estimates(policy, reference, examples, outputs, batch_size)[0]


def kl_to_reference(policy, reference, examples: Sequence[Example], outputs: Sequence) -> float:
    """Mean over samples of log p(y|x) - log p_ref(y|x), sequence log-probs from each `log_probs`.

    An unbiased estimate of KL(policy || reference) when the outputs were sampled from `policy`;
    any restlm policy works, the reference being another policy or anything with `log_probs`.
    """
    if not outputs:
        raise RestlmError("KL to the reference needs at least one sample")
    return float(np.mean(policy.log_probs(examples, outputs) - reference.log_probs(examples, outputs)))


def flag_divergence(proxy: Sequence[float], gold: Sequence[float]) -> list[bool]:
    """Per step: True where the proxy reward rose and the gold metric fell since the step before.

    In: one value per step of each (higher better). Out: a flag per step; the first is False.
    """
    if len(proxy) != len(gold):
        raise RestlmError(f"proxy has {len(proxy)} steps but gold has {len(gold)}")
    return [i > 0 and proxy[i] > proxy[i - 1] and gold[i] < gold[i - 1] for i in range(len(proxy))]
