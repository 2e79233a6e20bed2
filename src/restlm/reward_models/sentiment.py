"""Sentiment classifiers whose positive-class logit is a reward, and a second one to judge by.

The UCI sentences (IMDB, Yelp, Amazon; 3000) are split once by a seed: `eval_fraction` held
out, the rest cut into two disjoint halves. The "reward" model trains on one half, the "gold"
model on the other with another seed, and both report accuracy on the same held-out
sentences. A policy tuned (PPO, ReST) against the reward model is then judged by a classifier
that saw none of its training sentences and did not share its initial head.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from restlm.config.ranges import check_ranges
from restlm.data.examples import Example
from restlm.data.sentiment import read_sentiment_sources
from restlm.data.splits import train_eval_split

ROLES = ("reward", "gold")
LABELS = {0: "negative", 1: "positive"}


@dataclass
class SentimentTrainConfig:
    model: str = "minilm"
    """encoder to fine-tune: a short name, HF id or local path"""
    epochs: int = 2
    """passes over the training sentences"""
    learning_rate: float = 5e-5
    """peak learning rate (linear warm-up, then decay)"""
    batch_size: int = 32
    """sentences per step"""
    max_length: int = 128
    """tokens kept per sentence"""
    seed: int = 0
    """batch order and the new head's initialisation; the gold model adds 1"""

    def validate(self) -> SentimentTrainConfig:
        check_ranges(self, "sentiment_model", positive=("epochs", "learning_rate", "batch_size", "max_length"))
        return self


def sentiment_splits(examples: Sequence[Example], eval_fraction: float = 0.1, seed: int = 0) -> dict[str, list[Example]]:
    """{"reward": half of the rest, "gold": the other half, "eval": the held-out share}."""
    rest, held_out = train_eval_split(examples, eval_fraction, seed)
    half = len(rest) // 2
    return {"reward": rest[:half], "gold": rest[half:], "eval": held_out}


def train_sentiment_model(train: Sequence[Example], eval_examples: Sequence[Example], cfg: SentimentTrainConfig,
                          out: str | Path | None = None) -> dict:
    """Fine-tune a 2-class classifier on `train`; returns metrics with "eval_accuracy".

    With `out`, the model is saved there in HF format (labels named negative/positive) with
    `metrics.json` beside it.
    """
    from accelerate import Accelerator

    from restlm.atomic_files import write_json
    from restlm.config import TrainConfig
    from restlm.policies.base import TrainItem
    from restlm.policies.classifier import ClassifierPolicy
    from restlm.training import train_policy

    torch.manual_seed(cfg.seed)  # the new classification head is drawn when the model loads
    policy = ClassifierPolicy.from_pretrained(cfg.model, Accelerator(), num_labels=2, max_length=cfg.max_length)
    start = time.perf_counter()
    # float32: the committed sentiment comparisons were judged by classifiers trained so
    stats = train_policy(policy, [TrainItem(e, e.label) for e in train], TrainConfig(batch_size=cfg.batch_size, dtype="float32"),
                         cfg.learning_rate, cfg.epochs, cfg.seed, loss="bc", description="sentiment")
    predictions = policy.predict(eval_examples)
    metrics = {
        "eval_accuracy": sum(p == e.label for p, e in zip(predictions, eval_examples)) / len(eval_examples),
        "eval_examples": len(eval_examples), "train_examples": len(train), "epochs": cfg.epochs,
        "train_examples_per_s": stats.examples_per_s, "mean_train_loss": stats.mean_loss,
        "wall_time_s": time.perf_counter() - start, "config": dataclasses.asdict(cfg),
    }
    if out is not None:
        config = policy.unwrapped.config
        config.id2label, config.label2id = dict(LABELS), {v: k for k, v in LABELS.items()}
        policy.save(Path(out))
        write_json(Path(out) / "metrics.json", metrics)
    return metrics


def train_sentiment_role(role: str, out: str | Path | None, cfg: SentimentTrainConfig | None = None,
                         root: str | Path | None = None, eval_fraction: float = 0.1, split_seed: int = 0,
                         limit: int | None = None) -> dict:
    """Train the "reward" or the "gold" sentiment model on its half of the UCI sentences.

    `limit` keeps the first n training sentences of the half (for quick checks).
    """
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, not {role!r}")
    splits = sentiment_splits(read_sentiment_sources(root=root), eval_fraction, split_seed)
    cfg = cfg or SentimentTrainConfig()
    cfg = dataclasses.replace(cfg, seed=cfg.seed + ROLES.index(role))
    metrics = train_sentiment_model(splits[role][:limit], splits["eval"], cfg, out)
    return {"role": role, **metrics}
