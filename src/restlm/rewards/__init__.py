"""Rewards by name: 'nll', 'correct', 'chrf', 'bleu', 'weighted:chrf=0.7,bleu=0.3', 'exact_answer',
'exact_answer_lenient' (a numeric answer against the target, `answers.py`), 'model:<path or id>',
'reward_model:<path>', 'sentiment:<path>', 'module:function', or a callable."""
from __future__ import annotations

import importlib
from typing import Callable

from restlm.errors import ConfigError
from restlm.rewards.answers import exact_answer_reward
from restlm.rewards.base import Reward
from restlm.rewards.classification import classifier_model_reward, correct_reward, nll_reward
from restlm.rewards.generation import generation_reward
from restlm.rewards.learned import reward_model_reward, sentiment_reward

NAMED = {"nll": nll_reward, "correct": correct_reward, "exact_answer": exact_answer_reward,
         "exact_answer_lenient": lambda: exact_answer_reward(strict=False)}
# learned rewards of generated text, by "prefix:PATH"
LEARNED = {"reward_model:": reward_model_reward, "sentiment:": sentiment_reward}


def build_reward(spec: str | Callable | Reward, normalise: bool = False, key: str = "rest.reward") -> Reward:
    """A Reward from a name, 'model:PATH', 'package.module:function' or a Python callable.

    A plain callable takes (examples, outputs) and returns one score per pair, higher better.
    """
    reward = _build(spec, key)
    return reward.normalised() if normalise else reward


def _build(spec, key: str) -> Reward:
    if isinstance(spec, Reward):
        return spec
    if callable(spec):
        return Reward(getattr(spec, "__name__", "callable"), lambda policy, e, o: spec(e, o))
    if (generated := generation_reward(spec, key)) is not None:
        return generated
    if spec in NAMED:
        return NAMED[spec]()
    if spec.startswith("model:"):
        return classifier_model_reward(spec.removeprefix("model:"))
    for prefix, build in LEARNED.items():
        if spec.startswith(prefix):
            return build(spec.removeprefix(prefix))
    if ":" in spec:
        return _build(_imported_function(spec, key), key)
    raise ConfigError(key, f"unknown reward {spec!r}: use nll, correct, chrf, chrf++, bleu (add -lc to lower-case), "
                      "exact_answer, exact_answer_lenient, "
                      "weighted:chrf=0.7,bleu=0.3, model:PATH, reward_model:PATH, sentiment:PATH or module:function")


def _imported_function(spec: str, key: str) -> Callable:
    """The function a 'package.module:function' spec names; ConfigError for anything else."""
    module_name, _, function_name = (part.strip() for part in spec.partition(":"))
    if not module_name or not function_name.isidentifier():
        raise ConfigError(key, f"{spec!r} is not a reward: write a name (chrf, ...) or module:function")
    try:
        function = getattr(importlib.import_module(module_name), function_name)
    except Exception as error:  # noqa: BLE001 - the user's module may fail any way on import; one line
        raise ConfigError(key, f"cannot import reward function {spec!r}: {type(error).__name__}: {error}") from None
    if not callable(function):
        raise ConfigError(key, f"{spec!r} is a {type(function).__name__}, not a function")
    return function


__all__ = ["Reward", "build_reward"]
