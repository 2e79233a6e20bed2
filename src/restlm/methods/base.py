"""A method: what turns a task's start policy into a better one (SFT, ReST, PPO, DPO, ...).

Each method is one module of this package that registers its class with `@register_method`.
It names the config sections it reads (so a record is reused only when those are unchanged) and
the policy kinds it can train; `restlm compare` refuses a method on a task whose policy it cannot
train, before anything is written.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from restlm.config import ExperimentConfig
from restlm.errors import ConfigError
from restlm.policies.base import Policy
from restlm.runs import StageRunner

METHODS: dict[str, type[Method]] = {}
"""every registered method class by name (`--methods NAME,...`)"""


def register_method(name: str):
    """Class decorator: make a Method subclass the method called NAME."""
    def register(cls):
        if name in METHODS and METHODS[name] is not cls:
            raise ValueError(f"method {name!r} is registered twice ({METHODS[name].__name__}, {cls.__name__})")
        cls.name = name
        METHODS[name] = cls
        return cls

    return register


@dataclass
class MethodRun:
    """What one method run gets: the task, the policy (at the start's weights), where its stages go."""

    config: ExperimentConfig
    task: object  # restlm.tasks.Task
    policy: Policy
    stages: StageRunner
    prefix: str  # the stage-key prefix of this (seed, method), from run_layout.method_prefix
    start: str  # the stage key whose checkpoint holds the start policy
    start_metrics: dict  # evaluate() of the start policy
    seed: int
    budget: int | None  # sampled tokens a method may spend (None: as its config says)
    evaluate: Callable[[Policy], dict]  # the task's step metrics (dev selection, held-out proxy and gold)

    def reward(self):
        """The reward this method run optimises: the task's proxy, with a variant's `rest.reward` if it has one."""
        return self.task.proxy_reward(self.config.rest.reward)

    def proxy(self):
        """`reward()`, normalised as `rest.normalise_reward` says (as ReST normalises it)."""
        reward = self.reward()
        return reward.normalised() if self.config.rest.normalise_reward else reward

    def hold(self, key: str) -> None:
        """Make the policy hold the weights of stage `key` (loaded from its checkpoint unless it has them)."""
        if self.stages.in_memory != key:
            self.policy.load_weights(self.stages.run.checkpoint_dir(key))
            self.stages.in_memory = key


class Method(ABC):
    """One training method. `run` leaves the policy at the step it chose and returns its record:
    {"steps": [{"step", "sampled_tokens", metrics...}], "chosen_step", "sampled_tokens", "wall_time_s", ...}."""

    name: ClassVar[str]
    kinds: ClassVar[tuple[str, ...]] = ("classifier", "causal", "seq2seq")
    """the policy kinds it can train"""
    sections: ClassVar[tuple[str, ...]] = ()
    """the config sections it reads beyond the task's own (its record is reused only when they match)"""
    summary: ClassVar[str] = ""
    """one line for --help and the report"""
    needs_references: ClassVar[bool] = False
    """it trains on the task's reference outputs (compare refuses it on a task without them)"""
    needs: ClassVar[tuple[str, ...]] = ()
    """methods whose records on the same seed it reads (they run before it; compare refuses it without them)"""
    fixed: ClassVar[tuple[str, ...]] = ()
    """config keys (or sections) the method sets itself, whatever the config says: a variant may not change them"""
    online: ClassVar[bool] = False
    """it samples as it trains and spends a sampled-token budget (compare's --budget, or what ReST spent)"""

    def check(self, config: ExperimentConfig, policy: Policy) -> None:
        """ConfigError for a task this method cannot run on (called before anything is written)."""
        if policy.kind not in self.kinds:
            raise ConfigError("--methods", f"{self.name} trains {' or '.join(self.kinds)} policies; "
                              f"this task's policy is a {policy.kind}")

    @abstractmethod
    def run(self, run: MethodRun) -> dict:
        """Train from run.start; leave the policy at the chosen step; return the record."""


def chosen(steps: list[dict], metric: str) -> int:
    """The index of the first step where `metric` is highest (the start is step 0)."""
    scores = [step[metric] for step in steps]
    return scores.index(max(scores))
