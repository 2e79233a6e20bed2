"""A reward scores (input, output) pairs. ReST keeps the outputs a reward likes."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from restlm.data.examples import Example

RewardFn = Callable[[Any, Sequence[Example], Sequence[Any]], Sequence[float]]


@dataclass
class Reward:
    """`fn(policy, examples, outputs) -> scores`; `higher_is_better` False for losses like NLL.

    `normalise` maps scores to [0, 1] with 1 best; `normalised` is then the reward used.
    """

    name: str
    fn: RewardFn
    higher_is_better: bool = True
    to_unit: Callable[[np.ndarray], np.ndarray] | None = None

    def __call__(self, policy, examples: Sequence[Example], outputs: Sequence[Any]) -> np.ndarray:
        return np.asarray(self.fn(policy, examples, outputs), dtype=np.float64)

    def normalised(self) -> "Reward":
        """The same reward mapped to [0, 1], higher is better."""
        to_unit = self.to_unit or _min_max(self.higher_is_better)
        return Reward(f"{self.name} (normalised)", lambda p, e, o: to_unit(self(p, e, o)), True, None)


def binarised(reward: Reward, threshold: float) -> Reward:
    """ReST-EM's binary reward: 1 where `reward` (higher is better) is at or above `threshold`, else 0."""
    if not reward.higher_is_better:
        raise ValueError(f"a binary reward needs a higher-is-better reward; {reward.name} is lower-is-better")
    return Reward(f"{reward.name} >= {threshold:g}", lambda p, e, o: (reward(p, e, o) >= threshold).astype(float), True, None)


def _min_max(higher_is_better: bool) -> Callable[[np.ndarray], np.ndarray]:
    def scale(scores: np.ndarray) -> np.ndarray:
        low, high = scores.min(), scores.max()
        unit = (scores - low) / (high - low) if high > low else np.ones_like(scores)
        return unit if higher_is_better else 1.0 - unit

    return scale
