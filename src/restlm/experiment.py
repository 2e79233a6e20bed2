"""An experiment: baselines, then per seed supervised fine-tuning (G0I0) and one ReST trajectory
per grow size N; results and report at the end. The task (`restlm.tasks`: classification,
translation, prompts) gives the data, the policy, the evaluation and the task's own baselines.

Every unit of work is a stage of the run directory, so `restlm run --resume DIR` continues
a killed run and ends with the results of a run that never stopped.
"""
from __future__ import annotations

import time
from pathlib import Path

from accelerate import Accelerator

from restlm import run_layout as layout
from restlm.atomic_files import write_json
from restlm.config import ExperimentConfig, recorded_config, to_dict, validate
from restlm.errors import ConfigError
from restlm.kept_checkpoints import shrink_checkpoints
from restlm.methods.sft import fine_tune
from restlm.policies.base import Policy
from restlm.rest import ReST, write_train_nll
from restlm.results import collect_results
from restlm.rewards import build_reward
from restlm.runs import RunDir, StageRunner
from restlm.tasks import build_task


class Experiment:
    """One run of an experiment, configured by an ExperimentConfig (its `task` picks the task)."""

    def __init__(self, config: ExperimentConfig, run_dir: str | Path | None = None, resume: bool = False):
        self.accelerator = Accelerator()
        self.config = config
        self.task = build_task(config, self.accelerator)
        self.run = RunDir(run_dir or config.run.output_dir, is_main=self.accelerator.is_main_process)
        self.run.shown_metrics = self.task.stage_line_metrics()
        self.resume = resume

    @classmethod
    def resuming(cls, run_dir: str | Path, seeds: int | None = None) -> "Experiment":
        """Reopen a run directory with the config it was started with.

        `seeds` may extend the run to more seeds: seeds are independent, so finished ones stay valid.
        """
        probe = RunDir(run_dir, is_main=False)
        config = recorded_config(probe.resume())
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
        # refuse a busy, finished or foreign directory first, and fail on bad input before writing anything
        if self.resume:
            self.run.resume()
        else:
            self.run.check_new()
        self.load_data()
        self.reward = build_reward(self.config.rest.reward)  # a bad reward name fails before the run starts
        first_policy = self.new_policy(seed=0)
        self.task.check(self.run, first_policy)  # every other config error, before the first file
        inputs = self.task.input_fingerprints()
        if self.resume:
            self.run.check_inputs(inputs)
            self.run.update_config(to_dict(self.config))
        else:
            self.accelerator.wait_for_everyone()  # every process looked before the main one creates
            self.run.create(to_dict(self.config), inputs)  # decided again under the lock
        self.run.tensorboard = self.config.run.tensorboard
        self.task.baselines(self.run)
        for seed in range(self.config.run.seeds):
            self.run_seed(seed, first_policy if seed == 0 else self.new_policy(seed))
        results = collect_results(self.config, self.run, self.task)
        if self.accelerator.is_main_process:
            from restlm.report import write_report

            write_json(self.run.path / "results.json", results)
            write_report(self.run.path, results)
        self.accelerator.wait_for_everyone()
        return results

    def load_data(self) -> None:
        """Read the task's data (bad files raise DataError); self.train and self.dev are its splits."""
        self.task.load_data()
        self.train, self.dev = self.task.train, self.task.dev

    def new_policy(self, seed: int) -> Policy:
        return self.task.new_policy(seed)

    def evaluate(self, policy: Policy) -> dict:
        return self.task.evaluate(policy)

    # ---------------------------------------------------------------- stages
    def run_seed(self, seed: int, policy: Policy) -> None:
        """Untrained policy, supervised fine-tuning (G0I0), then one ReST trajectory per N."""
        init, sft = layout.seed_stage(seed, "init"), layout.seed_stage(seed, "sft")
        stages = StageRunner(self.run, policy, in_memory=init)
        record_nll = self.config.run.histograms and seed == 0
        if self.config.baselines.untrained_head:
            stages(layout.seed_stage(seed, "untrained"), timed(lambda key: self.evaluate(policy)), after=init, trains=False)
        sft_record = stages(sft, lambda key: self.fine_tune(policy, seed, key, record_nll), after=init, trains=True)
        metric = self.task.selection_metric
        rest = ReST(policy, self.reward, self.train, self.evaluate, self.config.rest, self.config.train, stages,
                    selection_metric=metric, record_train_nll=record_nll,
                    keep_checkpoints=self.config.run.keep_checkpoints)
        for size in self.config.rest.grow_sizes:
            rest.fit(size, seed, prefix=layout.trajectory(seed, size), start=sft, start_score=sft_record[metric])
        for size in self.config.rest.grow_sizes:  # finished: the trajectories' kept checkpoints are only read now
            shrink_checkpoints(self.run, layout.trajectory(seed, size), self.config.run.checkpoint_dtype, policy.kind)
        self.accelerator.wait_for_everyone()

    def fine_tune(self, policy: Policy, seed: int, key: str, record_nll: bool) -> dict:
        """G0I0: supervised fine-tuning on the gold outputs (the `sft` method's start policy)."""
        record = fine_tune(self.task, self.config, policy, seed, key)
        if record_nll and "sft" not in record:
            record["train_nll_file"] = write_train_nll(policy, self.train, self.run, key)
        return record


def timed(compute):
    """`compute` (key -> record) with the record's wall_time_s added where it has none: the report's
    Compute counts the baselines too."""
    def run(key: str) -> dict:
        start = time.perf_counter()
        record = compute(key)
        return {"wall_time_s": time.perf_counter() - start, **record}
    return run
