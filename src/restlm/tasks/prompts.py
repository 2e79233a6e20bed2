"""The user's own task: prompts from a file or a Hugging Face dataset, a reward from the spec
language, an optional gold metric that only the held-out prompts are scored by.

    task: prompts
    model: {name: smollm2}
    prompts: {train: my_train.jsonl, dev: my_dev.jsonl, test: my_test.jsonl, reference_column: answer}
    rest: {reward: my_rewards:length_penalty, original_data: none}

Every step decodes greedily: `dev_reward` (the reward's mean on dev prompts) selects the best
step; `test_reward` and `test_gold` are for the report only. With a reference column the policy
is first fine-tuned on the references (G0I0); without one it starts from the pretrained model.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from restlm.data.examples import Example
from restlm.data.location import resolve_data_path
from restlm.data.prompts import load_hub_prompts, read_prompt_table
from restlm.errors import ConfigError
from restlm.policies.base import Policy, TrainItem
from restlm.rewards import build_reward
from restlm.rewards.generation import generation_reward
from restlm.tasks.base import Task, register_task


@register_task("prompts")
class PromptsTask(Task):
    selection_metric = "dev_reward"
    untrained_label = "pretrained, prompted (no fine-tuning)"
    sections = ("model", "train", "generation", "prompts", "baselines.untrained_head")

    def __init__(self, config, accelerator):
        super().__init__(config, accelerator)
        cfg = config.prompts
        self.reward = build_reward(config.rest.reward)
        self.gold = build_reward(cfg.gold, key="prompts.gold") if cfg.gold else None
        self.test: list[Example] = []

    # ---- data
    def load_data(self) -> None:
        cfg = self.config.prompts
        for split in ("train", "dev"):
            if not getattr(cfg, split):
                raise ConfigError(f"prompts.{split}", "task 'prompts' needs a train and a dev split (a file, or "
                                  "a split name of prompts.hub)")
        self.train = self._split("train", cfg.limit)
        self.dev = self._split("dev", cfg.dev_limit)
        self.test = self._split("test", cfg.test_limit) if cfg.test else []

    def _split(self, split: str, limit: int | None) -> list[Example]:
        cfg = self.config.prompts
        columns = {"prompt_column": cfg.prompt_column, "reference_column": cfg.reference_column,
                   "extra_columns": cfg.extra_columns}
        name = getattr(cfg, split)
        if cfg.hub:
            examples = load_hub_prompts(cfg.hub, cfg.hub_config, name, **columns)
        else:
            examples = read_prompt_table(resolve_data_path(name), format=cfg.format, **columns)
        return examples[:limit] if limit is not None else examples

    def read_split(self, path: Path) -> list[Example]:
        cfg = self.config.prompts
        return read_prompt_table(path, cfg.prompt_column, cfg.reference_column, cfg.extra_columns, cfg.format)

    def score_only(self, examples: list[Example]) -> None:
        self.dev, self.test = [], examples  # as held-out prompts: the gold scores them too

    def splits(self) -> dict[str, list[Example]]:
        return {"train": self.train, "dev": self.dev, **({"test": self.test} if self.test else {})}

    def data_name(self) -> str:
        return self.config.prompts.hub or str(self.config.prompts.train)

    # ---- policy
    def new_policy(self, seed: int) -> Policy:
        return self.generative_policy(seed, self.config.prompts)

    def sft_items(self) -> list[TrainItem]:
        """The references, when the prompts have them; none: the pretrained model is the start."""
        return [TrainItem(e, e.target) for e in self.train if e.target is not None]

    def check_rest(self, rest, policy: Policy) -> None:
        super().check_rest(rest, policy)
        if self.config.prompts.reference_column is None:
            if rest.original_data != "none":
                raise ConfigError("rest.original_data", "the prompts have no references (prompts.reference_column), "
                                  "so there is no original data to mix in: set rest.original_data=none")
            if generation_reward(rest.reward) is not None:
                raise ConfigError("rest.reward", f"'{rest.reward}' scores outputs against references; "
                                  "set prompts.reference_column, or use a reward that needs none")
            if rest.reward in ("nll", "correct"):
                raise ConfigError("rest.reward", f"'{rest.reward}' is a classifier's reward")

    # ---- evaluation
    def evaluate(self, policy: Policy) -> dict:
        sets = {name: examples for name, examples in (("dev", self.dev), ("test", self.test)) if examples}
        decoded, speed = self.decode_greedy(policy, sets)
        metrics = {}
        for name, examples in sets.items():
            outputs = decoded[name]
            metrics[f"{name}_reward"] = self._mean_reward(policy, examples, outputs)
            if self.gold is not None and name == "test":  # the gold sees held-out prompts only
                metrics["test_gold"] = float(np.mean(self.gold(policy, examples, outputs)))
        return {**metrics, **speed}

    def score_dev(self, policy: Policy, outputs: list) -> float:
        return self._mean_reward(policy, self.dev, outputs)

    def _mean_reward(self, policy: Policy, examples: list[Example], outputs: list) -> float:
        return float(np.mean(self.reward(policy, examples, outputs)))

    def compare_keys(self) -> tuple[str, str, str]:
        if not self.config.prompts.test:
            raise ConfigError("prompts.test", "restlm compare scores every method on held-out prompts: set prompts.test")
        return "dev_reward", "test_reward", "test_gold" if self.gold is not None else "test_reward"

    def heldout(self) -> list[Example]:
        return self.test

    def gold_scores(self, policy: Policy, examples: list[Example], outputs: list) -> list[float]:
        judge = self.gold if self.gold is not None else self.reward  # no gold: the held-out reward judges
        return [float(s) for s in judge(policy, examples, outputs)]

    def guard(self) -> tuple[str, str] | None:
        return ("test_reward", "test_gold") if self.gold is not None and self.config.prompts.test else None

    def metric_columns(self) -> list[tuple[str, str]]:
        columns = [("dev_reward", "dev reward")]
        if self.config.prompts.test:
            columns.append(("test_reward", "test reward"))
            if self.gold is not None:
                columns.append(("test_gold", "test gold"))
        return columns
