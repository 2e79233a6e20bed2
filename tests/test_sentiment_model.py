"""Sentiment reward and gold classifiers: disjoint seeded halves with one shared held-out set,
training on a tiny random BERT that learns a cue word (saved with named labels and metrics,
usable as a `sentiment:` reward), and MiniLM on a slice of the real sentences (real)."""
from __future__ import annotations

import json
import random

import pytest
from helpers import WORDS, build_tiny_bert

from restlm.data.examples import Example
from restlm.data.sentiment import SOURCES, read_sentiment_sources
from restlm.reward_models.sentiment import (
    SentimentTrainConfig,
    sentiment_splits,
    train_sentiment_role,
)
from restlm.rewards import build_reward

CUES = {1: ["red", "big", "fast"], 0: ["blue", "small", "slow"]}
NEUTRAL = [w for w in WORDS if w not in CUES[0] + CUES[1]]


def write_sentiment_files(root, per_file: int = 40) -> None:
    """Three files in the UCI layout; a cue word tells the label."""
    rng = random.Random(0)
    (root / "sentiment").mkdir(parents=True)
    for name in SOURCES.values():
        lines = []
        for i in range(per_file):
            label = i % 2
            words = rng.sample(NEUTRAL, rng.randint(2, 5)) + [rng.choice(CUES[label])]
            rng.shuffle(words)
            lines.append(f"{' '.join(words)}\t{label}")
        (root / "sentiment" / name).write_text("\n".join(lines) + "\n")


def test_splits_are_disjoint_seeded_and_share_the_held_out_set():
    examples = [Example(text=f"s{i}", label=i % 2, uid=str(i)) for i in range(101)]
    splits = sentiment_splits(examples, eval_fraction=0.1, seed=0)
    uids = {role: {e.uid for e in part} for role, part in splits.items()}
    assert [len(uids[r]) for r in ("reward", "gold", "eval")] == [45, 46, 10]
    assert not (uids["reward"] & uids["gold"]) and not (uids["eval"] & (uids["reward"] | uids["gold"]))
    assert sentiment_splits(examples, 0.1, seed=0) == splits != sentiment_splits(examples, 0.1, seed=1)


def test_reward_and_gold_models_learn_their_halves_and_save(tmp_path):
    write_sentiment_files(tmp_path / "data")
    model = build_tiny_bert(tmp_path / "bert", num_labels=2)
    cfg = SentimentTrainConfig(model=str(model), epochs=10, learning_rate=3e-3, batch_size=8, max_length=16)
    reward = train_sentiment_role("reward", tmp_path / "reward", cfg, root=tmp_path / "data", eval_fraction=0.2)
    gold = train_sentiment_role("gold", tmp_path / "gold", cfg, root=tmp_path / "data", eval_fraction=0.2)
    assert reward["train_examples"] == gold["train_examples"] == 48 and reward["eval_examples"] == 24
    assert reward["eval_accuracy"] >= 0.9 and gold["eval_accuracy"] >= 0.9
    assert (reward["config"]["seed"], gold["config"]["seed"]) == (0, 1)
    saved = json.loads((tmp_path / "gold" / "config.json").read_text())
    assert saved["id2label"] == {"0": "negative", "1": "positive"}
    assert json.loads((tmp_path / "gold" / "metrics.json").read_text())["eval_accuracy"] == gold["eval_accuracy"]
    scores = build_reward(f"sentiment:{tmp_path / 'reward'}")(None, [Example("x")] * 2, ["the red cat", "the blue cat"])
    assert scores[0] > 0 > scores[1]


def test_unknown_role():
    with pytest.raises(ValueError, match="reward"):
        train_sentiment_role("judge", None)


@pytest.mark.real
def test_minilm_sentiment_model_on_real_sentences():
    """MiniLM, one epoch on 320 real sentences: well above chance on 150 held-out ones."""
    splits = sentiment_splits(read_sentiment_sources())
    from restlm.reward_models.sentiment import train_sentiment_model

    metrics = train_sentiment_model(splits["reward"][:320], splits["eval"][:150],
                                    SentimentTrainConfig(epochs=1, learning_rate=1e-4, batch_size=16, max_length=64))
    assert metrics["eval_accuracy"] >= 0.7, metrics
