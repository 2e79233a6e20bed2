"""Learned rewards for generative policies: a Bradley-Terry reward model, a sentiment classifier.

Both score (example.text as the prompt, the output as the response), batched, without
gradients, on the device the reward model was loaded to (CPU unless moved).
"""
from __future__ import annotations

import numpy as np

from restlm.data.examples import Example
from restlm.rewards.base import Reward


def reward_model_reward(path: str, batch_size: int = 16, max_length: int | None = None) -> Reward:
    """r(prompt, output) of a saved reward model or reward ensemble (see restlm.reward_models); unbounded,
    higher better."""
    from restlm.reward_models.ensemble import RewardEnsemble, is_ensemble
    from restlm.reward_models.model import RewardModel

    loader = RewardEnsemble if is_ensemble(path) else RewardModel
    model = loader.from_pretrained(path, max_length=max_length)

    def score(policy, examples, outputs):
        return model.score([e.text for e in examples], [str(o) for o in outputs], batch_size)

    return Reward(f"reward_model:{path}", score, True)


def sentiment_reward(path: str, batch_size: int = 64, max_length: int = 128) -> Reward:
    """The positive-class logit of a 2-class sentiment classifier on the output alone.

    The score is log p(positive) - log p(negative), the logit of p(positive) (shift-free,
    unlike a raw logit); normalised, it becomes p(positive).
    """
    from accelerate import Accelerator

    from restlm.policies.classifier import ClassifierPolicy

    judge = ClassifierPolicy.from_pretrained(path, Accelerator(), max_length=max_length, batch_size=batch_size)

    def score(policy, examples, outputs):
        logits = judge.logits([Example(text=str(o)) for o in outputs])
        return (logits[:, 1] - logits[:, 0]).numpy()

    return Reward(f"sentiment:{path}", score, True, lambda s: 1.0 / (1.0 + np.exp(-s)))
