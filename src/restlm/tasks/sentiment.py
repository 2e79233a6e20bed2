"""Positive movie-review continuations: the policy continues the first 4-6 words of an IMDB
sentence; the proxy is p(positive) of one MiniLM sentiment classifier, the gold p(positive) of
another trained on the other half of the UCI sentences, which no method sees. Both score the
continuation alone. A missing classifier is trained first, into the configured folder.

Held-out prompts are openings of sentences neither classifier trained on, then of the gold's (never
the proxy's), so a held-out prompt never leaks into the proxy. Dev and training prompts follow.
The start is the instruct model as it is (no references to fine-tune on).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from restlm.data.examples import Example
from restlm.errors import ConfigError, DataError
from restlm.policies.base import Policy, TrainItem
from restlm.rewards import build_reward
from restlm.tasks.base import Task, register_task

ROLES = ("reward", "gold")


def openings(examples: list[Example]) -> list[Example]:
    """The first 4 to 6 words (about half) of each IMDB sentence of six words or more."""
    kept = [e for e in examples if e.uid.startswith("imdb") and len(e.text.split()) >= 6]
    return [Example(text=" ".join(e.text.split()[: max(4, min(6, len(e.text.split()) // 2))]), uid=e.uid,
                    meta={"sentence_label": e.label}) for e in kept]


@register_task("sentiment")
class SentimentTask(Task):
    selection_metric = "dev_reward"
    untrained_label = "instruct model, prompted"
    sections = ("model", "train", "generation", "sentiment", "baselines.untrained_head")

    def __init__(self, config, accelerator):
        super().__init__(config, accelerator)
        self.heldout_set: list[Example] = []
        self.info: dict = {}

    # ---- data and the two classifiers
    def load_data(self) -> None:
        from restlm.data.sentiment import read_sentiment_sources
        from restlm.reward_models.sentiment import sentiment_splits

        cfg = self.config.sentiment
        for role in ROLES:
            self.info[f"{role}_model"] = self._classifier(role)
        splits = sentiment_splits(read_sentiment_sources())  # the split the classifiers trained on
        unseen, gold_seen = openings(splits["eval"]), openings(splits["gold"])
        self.heldout_set = (unseen + gold_seen)[: cfg.heldout_prompts]
        if len(self.heldout_set) < cfg.heldout_prompts:
            raise ConfigError("sentiment.heldout_prompts", f"only {len(self.heldout_set)} openings neither the proxy "
                              f"nor the held-out split saw; ask for at most that many")
        pool = unseen[cfg.heldout_prompts :] + openings(splits["reward"])  # then sentences the proxy saw
        self.dev = pool[: cfg.dev_prompts]
        self.train = pool[cfg.dev_prompts : cfg.dev_prompts + cfg.prompts]
        self.info["heldout_prompts_unseen_by_both_models"] = min(len(unseen), cfg.heldout_prompts)
        # the proxy as methods get it: the classifier's logit (rest.normalise_reward maps it to p(positive))
        self.proxy_logit = build_reward(f"sentiment:{self._path('reward')}")
        self.proxy = self.proxy_logit.normalised()
        self.gold = build_reward(f"sentiment:{self._path('gold')}", normalise=True)

    def _path(self, role: str) -> Path:
        return Path(getattr(self.config.sentiment, f"{role}_model")).expanduser().resolve()

    def _classifier(self, role: str) -> dict:
        """The classifier's folder and held-out accuracy, trained there first when missing."""
        from restlm.atomic_files import staged_folder
        from restlm.reward_models.sentiment import train_sentiment_role

        path = self._path(role)
        if not (path / "config.json").exists():
            print(f"== training the sentiment {role} model into {path}", flush=True)
            with staged_folder(path) as folder:
                train_sentiment_role(role, folder, limit=self.config.sentiment.classifier_limit)
        try:
            metrics = json.loads((path / "metrics.json").read_text()) if (path / "metrics.json").exists() else {}
        except json.JSONDecodeError as error:
            raise DataError(path / "metrics.json", f"not a metrics file ({error.msg})") from None
        return {"path": str(path), **{k: metrics.get(k) for k in ("eval_accuracy", "train_examples")}}

    def splits(self) -> dict[str, list[Example]]:
        return {"train": self.train, "dev": self.dev, "test": self.heldout_set}

    def read_split(self, path: Path) -> list[Example]:
        from restlm.data.prompts import read_prompt_table

        return read_prompt_table(path, "prompt", None, [], None)

    def score_only(self, examples: list[Example]) -> None:
        self.dev, self.heldout_set = [], examples

    def data_name(self) -> str:
        return "IMDB openings (UCI sentiment sentences)"

    # ---- policy
    def new_policy(self, seed: int) -> Policy:
        return self.generative_policy(seed, self.config.sentiment)

    def sft_items(self) -> list[TrainItem]:
        return []  # no references: the instruct model is the start

    def proxy_reward(self, spec: str | None = None):
        return self.proxy_logit  # check_rest refuses another spec

    def check_rest(self, rest, policy: Policy) -> None:
        super().check_rest(rest, policy)
        if rest.reward != self.config.rest.reward:
            raise ConfigError("rest.reward", "the sentiment task's reward is its proxy classifier; a variant "
                              "cannot change it")
        if not rest.normalise_reward:
            raise ConfigError("rest.normalise_reward", "the sentiment proxy is a logit: set it to true, so that "
                              "rewards (and rising thresholds) are p(positive) in [0, 1]")

    # ---- evaluation
    def evaluate(self, policy: Policy) -> dict:
        decoded, speed = self.decode_greedy(policy, {"dev": self.dev, "test": self.heldout_set})
        dev, held = decoded["dev"], decoded["test"]
        metrics = {"test_reward": float(np.mean(self.proxy(policy, self.heldout_set, held))),
                   "test_gold": float(np.mean(self.gold(policy, self.heldout_set, held)))}
        if self.dev:
            metrics["dev_reward"] = self.score_dev(policy, dev)
        return {**metrics, **speed}

    def score_dev(self, policy: Policy, outputs: list) -> float:
        return float(np.mean(self.proxy(policy, self.dev, outputs)))

    def guard(self) -> tuple[str, str]:
        return "test_reward", "test_gold"

    def metric_columns(self) -> list[tuple[str, str]]:
        return [("dev_reward", "dev proxy"), ("test_reward", "held-out proxy"), ("test_gold", "held-out gold")]

    def compare_keys(self) -> tuple[str, str, str]:
        return "dev_reward", "test_reward", "test_gold"

    def heldout(self) -> list[Example]:
        return self.heldout_set

    def gold_scores(self, policy: Policy, examples: list[Example], outputs: list) -> list[float]:
        return [float(s) for s in self.gold(policy, examples, outputs)]
