"""A deterministic train/eval split of any list (preference pairs, sentences, ...)."""
from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def train_eval_split(items: Sequence[T], eval_fraction: float = 0.1, seed: int = 0,
                     eval_size: int | None = None) -> tuple[list[T], list[T]]:
    """(train, eval): a seeded shuffle of `items`, the first `eval_size` (default
    round(eval_fraction * len)) to eval and the rest to train, each in shuffled order.

    The same items, fraction and seed always give the same split, on any machine.
    Raises ValueError when eval or train would be empty.
    """
    n_eval = round(eval_fraction * len(items)) if eval_size is None else int(eval_size)
    if not 0 < n_eval < len(items):
        raise ValueError(f"cannot hold out {n_eval} of {len(items)} items: both train and eval must be non-empty")
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)  # Random(seed).shuffle is stable across Python versions and platforms
    return [items[i] for i in order[n_eval:]], [items[i] for i in order[:n_eval]]
