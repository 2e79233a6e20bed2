"""Sentence (pair) classification, the reference experiment (MRPC): accuracy and F1 on dev.

Baselines: the majority class and a zero-shot LLM. The policy is a ClassifierPolicy.
"""
from __future__ import annotations

import dataclasses
import time
from collections import Counter
from pathlib import Path

from accelerate.utils import set_seed

from restlm.config import ExperimentConfig, to_dict
from restlm.data.examples import Example
from restlm.data.label_names import label_names
from restlm.data.location import data_root
from restlm.data.sentence_pairs import COMMON_KEYS, SOURCE_KEYS, load_classification_split
from restlm.data.tabular import read_labelled
from restlm.errors import ConfigError, DataError
from restlm.policies.classifier import ClassifierPolicy
from restlm.policies.lora import lora_of_rank
from restlm import run_layout as layout
from restlm.runs import RunDir
from restlm.stats import classification_metrics
from restlm.tasks.base import Task, register_task


def load_data(config: ExperimentConfig) -> tuple[list[Example], list[Example]]:
    """(train, dev) examples as the data config names them; bad files raise DataError."""
    values = to_dict(config.data)
    keys = COMMON_KEYS | SOURCE_KEYS[config.data.source]
    cfg = {k: v for k, v in values.items() if k in keys}
    root = data_root(config.data.root) if config.data.source != "hub" else None
    train = load_classification_split(cfg, "train", root)
    dev = load_classification_split({**cfg, "limit": config.data.dev_limit}, "dev", root)
    for name, examples in (("train", train), ("dev", dev)):
        _check_labels(examples, config.model.num_labels, f"{name} data")
    return train, dev


def _check_labels(examples: list[Example], num_labels: int, name: str) -> None:
    bad = next((e for e in examples if e.label is None or not 0 <= e.label < num_labels), None)
    if bad is not None:
        message = f"label {bad.label} is outside 0..{num_labels - 1} (model.num_labels)"
        raise DataError(bad.meta.get("path", name), message, bad.meta.get("line"))


def validation_split(train: list[Example], fraction: float, seed: int) -> tuple[list[Example], list[Example]]:
    """(train, validation): `fraction` of the examples, stratified by label and seeded, held out."""
    from sklearn.model_selection import train_test_split

    rows = list(range(len(train)))
    try:
        kept, held = train_test_split(rows, test_size=fraction, random_state=seed, stratify=[e.label for e in train])
    except ValueError as error:  # too few examples of a label to stratify
        raise DataError("train data", f"cannot carve a validation split of {fraction} from {len(train)} examples "
                        f"({error})") from None
    return [train[i] for i in sorted(kept)], [train[i] for i in sorted(held)]


@register_task("classification")
class ClassificationTask(Task):
    untrained_label = "untrained head"
    sections = ("data", "model", "train", "baselines")

    def __init__(self, config, accelerator):
        super().__init__(config, accelerator)
        self.validation: list[Example] = []

    @property
    def selection_metric(self) -> str:
        """Validation accuracy when a validation split is carved from train (dev then only reports)."""
        return "val_accuracy" if self.config.data.validation_fraction else "dev_accuracy"

    def load_data(self) -> None:
        self.train, self.dev = load_data(self.config)
        data = self.config.data
        if data.validation_fraction:
            self.train, self.validation = validation_split(self.train, data.validation_fraction, data.validation_seed)

    def splits(self) -> dict[str, list[Example]]:
        return {**super().splits(), **({"validation": self.validation} if self.validation else {})}

    def read_split(self, path: Path) -> list[Example]:
        data = self.config.data
        examples = read_labelled(path, text_column=data.text_column, text_pair_column=data.text_pair_column,
                                 label_column=data.label_column, label_set=data.label_set)
        _check_labels(examples, self.config.model.num_labels, str(path))
        return examples

    def new_policy(self, seed: int) -> ClassifierPolicy:
        set_seed(seed)  # the new classification head is drawn from this seed
        model = self.config.model
        lora = lora_of_rank(model.lora_rank)
        names = label_names(self.config.data)  # saved as id2label, so pipeline() names the classes
        names = names if names is not None and len(names) == model.num_labels else None
        return ClassifierPolicy.from_pretrained(model.name, self.accelerator, model.num_labels, lora=lora,
                                                label_names=names,
                                                max_length=model.max_length,
                                                batch_size=self.config.train.eval_batch_size)

    def evaluate(self, policy: ClassifierPolicy) -> dict:
        predictions = policy.predict(self.validation + self.dev)  # one pass over both
        val, dev = predictions[: len(self.validation)], predictions[len(self.validation) :]
        metrics = classification_metrics([e.label for e in self.dev], dev)
        scores = {"dev_accuracy": metrics["accuracy"], "dev_f1": metrics["f1"]}
        if self.validation:
            metrics = classification_metrics([e.label for e in self.validation], val)
            scores.update(val_accuracy=metrics["accuracy"], val_f1=metrics["f1"],
                          dev_reward=float(self._proxy()(policy, self.dev, dev).mean()))
        return scores

    def metric_columns(self) -> list[tuple[str, str]]:
        columns = [("dev_accuracy", "dev accuracy"), ("dev_f1", "dev F1")]
        return ([("val_accuracy", "validation accuracy")] if self.validation else []) + columns

    # ---- compare: select on the validation split, report dev (its proxy, and accuracy as the gold)
    def _proxy(self):
        reward = self.proxy_reward()
        return reward.normalised() if self.config.rest.normalise_reward or not reward.higher_is_better else reward

    def compare_keys(self) -> tuple[str, str, str]:
        if not self.config.data.validation_fraction:
            raise ConfigError("data.validation_fraction", "restlm compare selects steps on a validation split "
                              "carved from the training data and scores dev: set it (e.g. 0.1)")
        return "val_accuracy", "dev_reward", "dev_accuracy"

    def heldout(self) -> list[Example]:
        return self.dev

    def gold_scores(self, policy, examples: list[Example], outputs: list) -> list[float]:
        return [float(o == e.label) for e, o in zip(examples, outputs)]

    def check(self, run: RunDir, policy) -> None:
        """Also the zero-shot baseline's config (prompt, URL, key), before the first file is written."""
        from restlm.zero_shot import check_zero_shot

        super().check(run, policy)
        if self.config.baselines.zero_shot.backend != "none" and run.stage(layout.ZERO_SHOT) is None:
            check_zero_shot(dataclasses.asdict(self.config.baselines.zero_shot))

    def baselines(self, run: RunDir) -> None:
        """Majority class and the zero-shot LLM: the rows of Table 1 that need no seed."""
        if run.stage(layout.MAJORITY) is None:
            majority = Counter(e.label for e in self.train).most_common(1)[0][0]
            metrics = classification_metrics([e.label for e in self.dev], [majority] * len(self.dev))
            run.complete(layout.MAJORITY, {"label": majority, "dev_accuracy": metrics["accuracy"], "dev_f1": metrics["f1"]})
        zero_shot = self.config.baselines.zero_shot
        # one process is enough for a baseline that does not train; only the main one reports
        if self.accelerator.is_main_process and zero_shot.backend != "none" and run.stage(layout.ZERO_SHOT) is None:
            from restlm.zero_shot import build_zero_shot

            start = time.perf_counter()
            classifier = build_zero_shot(dataclasses.asdict(zero_shot))
            predictions = classifier.predict(self.dev)  # raises above baselines.zero_shot.max_unparsed
            metrics = classification_metrics([e.label for e in self.dev], predictions)
            run.complete(layout.ZERO_SHOT, {"model": zero_shot.model, "backend": zero_shot.backend,
                                                 "dev_accuracy": metrics["accuracy"], "dev_f1": metrics["f1"],
                                                 "predicted_yes": sum(predictions) / len(predictions),
                                                 "unparsed_fraction": classifier.unparsed_fraction,
                                                 "wall_time_s": time.perf_counter() - start})
        self.accelerator.wait_for_everyone()
