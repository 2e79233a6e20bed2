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


def mean_token_entropy(policy, examples: Sequence[Example], outputs: Sequence[str], batch_size: int = 8) -> float:
    """Mean over all output tokens (EOS included) of the entropy, in nats, of the policy's
    next-token distribution where each token was chosen. Causal and seq2seq policies."""
    if len(examples) != len(outputs):
        raise RestlmError(f"{len(examples)} examples but {len(outputs)} outputs")
    if getattr(policy, "kind", None) not in ("causal", "seq2seq"):
        raise RestlmError(f"token entropy needs a causal or seq2seq policy, not {getattr(policy, 'kind', policy)!r}")
    total, count = 0.0, 0
    policy.unwrapped.eval()
    with torch.no_grad():
        for start in range(0, len(outputs), batch_size):
            items = [TrainItem(e, o) for e, o in zip(examples[start : start + batch_size], outputs[start : start + batch_size])]
            batch = {k: v.to(policy.accelerator.device) for k, v in policy.collate(items).items()}
            logits, labels = policy.output_logits(policy.unwrapped, batch)  # the policy's own token pass
            mask = labels != -100
            log_p = torch.log_softmax(logits.float(), dim=-1)
            entropy = -(log_p.exp() * log_p).sum(-1)
            total += entropy[mask].sum().item()
            count += int(mask.sum())
    return total / max(count, 1)


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
