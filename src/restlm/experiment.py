"""The reference experiment for classifier policies: baselines, then per seed supervised
fine-tuning (G0I0) and one ReST trajectory per grow size N; results and report at the end.

Every unit of work is a stage of the run directory, so `restlm run --resume DIR` continues
a killed run and ends with the results of a run that never stopped.
"""
from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path

from accelerate import Accelerator
from accelerate.utils import set_seed

from restlm.config import ExperimentConfig, from_dict, to_dict, validate
from restlm.data.examples import Example
from restlm.data.location import data_root
from restlm.data.sentence_pairs import COMMON_KEYS, SOURCE_KEYS, load_classification_split
from restlm.errors import ConfigError, DataError
from restlm.policies.base import TrainItem
from restlm.policies.classifier import ClassifierPolicy
from restlm.rest import ReST, stage_seed, write_train_nll
from restlm.results import collect_results
from restlm.rewards import build_reward
from restlm.runs import RunDir, StageRunner, write_json
from restlm.stats import classification_metrics
from restlm.training import train_policy


def load_data(config: ExperimentConfig) -> tuple[list[Example], list[Example]]:
    """(train, dev) examples as the data config names them; bad files raise DataError."""
    values = to_dict(config.data)
    keys = COMMON_KEYS | SOURCE_KEYS[config.data.source]
    cfg = {k: v for k, v in values.items() if k in keys}
    root = data_root(config.data.root) if config.data.source != "hub" else None
    train = load_classification_split(cfg, "train", root)
    dev = load_classification_split({**cfg, "limit": config.data.dev_limit}, "dev", root)
    for name, examples in (("train", train), ("dev", dev)):
        bad = next((e for e in examples if e.label is None or not 0 <= e.label < config.model.num_labels), None)
        if bad is not None:
            message = f"label {bad.label} is outside 0..{config.model.num_labels - 1} (model.num_labels)"
            raise DataError(bad.meta.get("path", f"{name} data"), message, bad.meta.get("line"))
    return train, dev


def grow_size_key(size: int | None) -> str:
    return "all" if size is None else str(size)


class Experiment:
    """One run of the reference experiment, configured by an ExperimentConfig."""

    def __init__(self, config: ExperimentConfig, run_dir: str | Path | None = None, resume: bool = False):
        self.accelerator = Accelerator()
        self.config = config
        self.run = RunDir(run_dir or config.run.output_dir, is_main=self.accelerator.is_main_process)
        self.resume = resume

    @classmethod
    def resuming(cls, run_dir: str | Path, seeds: int | None = None) -> "Experiment":
        """Reopen a run directory with the config it was started with.

        `seeds` may extend the run to more seeds: seeds are independent, so finished ones stay valid.
        """
        probe = RunDir(run_dir, is_main=False)
        config = from_dict(ExperimentConfig, probe.resume())
        if seeds is not None:
            if seeds < config.run.seeds:
                raise ConfigError("run.seeds", f"a resumed run can add seeds, not drop them ({config.run.seeds} -> {seeds})")
            config.run.seeds = seeds
        validate(config)
        return cls(config, run_dir, resume=True)

    # ---------------------------------------------------------------- top level
    def run_all(self) -> dict:
        """Run (or finish) every stage; write results.json and the report; return the results."""
        try:
            return self._run_all()
        finally:
            self.run.close()

    def _run_all(self) -> dict:
        # refuse a busy or finished directory first, and fail on bad input before writing anything
        held_run = self.run.holds_run()
        if self.resume:
            self.run.resume()
        else:
            self.run.refuse_held_run(held_run)
        self.train, self.dev = load_data(self.config)
        self.reward = build_reward(self.config.rest.reward)  # a bad reward name fails before the run starts
        first_policy = self.new_policy(seed=0)
        if self.resume:
            self.run.update_config(to_dict(self.config))
        else:
            self.accelerator.wait_for_everyone()  # every process looked before the main one creates
            self.run.create(to_dict(self.config), held_run)
        self.run.tensorboard = self.config.run.tensorboard
        self.baselines()
        for seed in range(self.config.run.seeds):
            self.run_seed(seed, first_policy if seed == 0 else self.new_policy(seed))
        results = collect_results(self.config, self.run)
        if self.accelerator.is_main_process:
            from restlm.report import write_report

            write_json(self.run.path / "results.json", results)
            write_report(self.run.path, results)
        self.accelerator.wait_for_everyone()
        return results

    def new_policy(self, seed: int) -> ClassifierPolicy:
        set_seed(seed)  # the new classification head is drawn from this seed
        return ClassifierPolicy.from_pretrained(self.config.model.name, self.accelerator, self.config.model.num_labels,
                                                max_length=self.config.model.max_length,
                                                batch_size=self.config.train.eval_batch_size)

    def evaluate(self, policy: ClassifierPolicy) -> dict:
        metrics = classification_metrics([e.label for e in self.dev], policy.predict(self.dev))
        return {"dev_accuracy": metrics["accuracy"], "dev_f1": metrics["f1"]}

    # ---------------------------------------------------------------- stages
    def baselines(self) -> None:
        """Majority class and the zero-shot LLM: the rows of Table 1 that need no seed."""
        if self.run.stage("baselines/majority") is None:
            majority = Counter(e.label for e in self.train).most_common(1)[0][0]
            metrics = classification_metrics([e.label for e in self.dev], [majority] * len(self.dev))
            self.run.complete("baselines/majority", {"label": majority, "dev_accuracy": metrics["accuracy"], "dev_f1": metrics["f1"]})
        zero_shot = self.config.baselines.zero_shot
        # one process is enough for a baseline that does not train; only the main one reports
        if self.accelerator.is_main_process and zero_shot.backend != "none" and self.run.stage("baselines/zero_shot") is None:
            from restlm.zero_shot import build_zero_shot

            predictions = build_zero_shot(dataclasses.asdict(zero_shot)).predict(self.dev)
            metrics = classification_metrics([e.label for e in self.dev], predictions)
            self.run.complete("baselines/zero_shot", {"model": zero_shot.model, "backend": zero_shot.backend,
                                                      "dev_accuracy": metrics["accuracy"], "dev_f1": metrics["f1"],
                                                      "predicted_yes": sum(predictions) / len(predictions)})
        self.accelerator.wait_for_everyone()

    def run_seed(self, seed: int, policy: ClassifierPolicy) -> None:
        """Untrained head, supervised fine-tuning (G0I0), then one ReST trajectory per N."""
        init, sft = f"seed{seed}/init", f"seed{seed}/sft"
        stages = StageRunner(self.run, policy, in_memory=init)
        record_nll = self.config.run.histograms and seed == 0
        if self.config.baselines.untrained_head:
            stages(f"seed{seed}/untrained", lambda key: self.evaluate(policy), after=init, trains=False)
        sft_record = stages(sft, lambda key: self.fine_tune(policy, seed, key, record_nll), after=init, trains=True)
        rest = ReST(policy, self.reward, self.train, self.evaluate, self.config.rest, self.config.train, stages,
                    record_train_nll=record_nll, keep_checkpoints=self.config.run.keep_checkpoints)
        for size in self.config.rest.grow_sizes:
            rest.fit(size, seed, prefix=f"seed{seed}/n{grow_size_key(size)}", start=sft, start_score=sft_record["dev_accuracy"])

    def fine_tune(self, policy: ClassifierPolicy, seed: int, key: str, record_nll: bool) -> dict:
        """G0I0: supervised fine-tuning on the gold labels."""
        items = [TrainItem(e, e.label) for e in self.train]
        stats = train_policy(policy, items, self.config.train, self.config.train.learning_rate,
                             self.config.train.epochs, stage_seed(seed, key), description=key)
        record = {"train_loss": stats.mean_loss, "train_examples_per_s": stats.examples_per_s, **self.evaluate(policy),
                  "wall_time_s": stats.wall_time_s}
        if record_nll:
            record["train_nll_file"] = write_train_nll(policy, self.train, self.run, key)
        return record
