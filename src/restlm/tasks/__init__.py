"""Tasks an `Experiment` runs, by the config's `task` name. Each task is one module here that
registers its class with `@register_task("name")`; a new task is one new file (and its import below).

  classification  MRPC and any labelled sentence (pair) file, a classifier policy
  translation     Multi30k / IWSLT with a generative policy
  prompts         the user's own prompts (a file or a HF dataset) and reward, a generative policy
  sentiment       positive movie-review continuations, a proxy and a gold classifier
  arithmetic      generated arithmetic and word problems, an exact-answer reward
"""
from __future__ import annotations

from restlm.config import ExperimentConfig
from restlm.errors import ConfigError
from restlm.tasks.base import TASKS, Task, register_task

# each import registers its task
from restlm.tasks import arithmetic, classification, prompts, sentiment, translation  # noqa: E402,F401  isort: skip


def build_task(config: ExperimentConfig, accelerator) -> Task:
    """The Task that `config.task` names; ConfigError for a name no module registered."""
    if config.task not in TASKS:
        raise ConfigError("task", f"must be one of {', '.join(sorted(TASKS))}; got {config.task!r}")
    return TASKS[config.task](config, accelerator)


__all__ = ["TASKS", "Task", "build_task", "register_task"]
