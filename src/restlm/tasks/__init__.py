"""Tasks an `Experiment` can run: 'classification' (MRPC and other labelled sentence pairs) and
'translation' (Multi30k with a generative policy)."""
from __future__ import annotations

from restlm.config import ExperimentConfig
from restlm.tasks.base import Task


def build_task(config: ExperimentConfig, accelerator) -> Task:
    """The Task that `config.task` names."""
    if config.task == "translation":
        from restlm.tasks.translation import TranslationTask

        return TranslationTask(config, accelerator)
    from restlm.tasks.classification import ClassificationTask

    return ClassificationTask(config, accelerator)


__all__ = ["Task", "build_task"]
