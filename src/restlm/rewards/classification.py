"""Rewards of a label given an input: the reference's NLL, correctness, a reward model."""
from __future__ import annotations

import numpy as np

from restlm.rewards.base import Reward


def nll_reward() -> Reward:
    """NLL of the label under the current policy (the reference's reward; lower is better).

    Normalised, it becomes the probability of the label, exp(-NLL).
    """
    return Reward("nll", lambda policy, examples, outputs: -policy.log_probs(examples, outputs), False, lambda s: np.exp(-s))


def correct_reward() -> Reward:
    """1 when the output equals the gold label, else 0."""

    def score(policy, examples, outputs):
        return [float(int(o) == e.label) for e, o in zip(examples, outputs)]

    return Reward("correct", score, True, lambda s: s)


def classifier_model_reward(name: str, max_length: int = 128) -> Reward:
    """Probability of the output under a separate, frozen classifier (a learned reward model)."""
    from accelerate import Accelerator

    from restlm.policies.classifier import ClassifierPolicy

    judge = ClassifierPolicy.from_pretrained(name, Accelerator(), max_length=max_length)

    def score(policy, examples, outputs):
        return np.exp(judge.log_probs(examples, outputs))

    return Reward(f"model:{name}", score, True, lambda s: s)
