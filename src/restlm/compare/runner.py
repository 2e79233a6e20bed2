"""`restlm compare`: several methods on one task, from the same start policy, judged the same way.

Per seed: the start policy (stage `seedS/start`: SFT on the task's references, or the pretrained
model), then each method from it (its stages under `seedS/<method>`), then a final evaluation of
the step it chose (`seedS/<method>/final`: held-out outputs, their gold, KL to the start,
distinct-2). Every unit is a stage of one run directory, so a killed compare resumes where it
stopped and ends with the results of one that never did. Step selection reads the dev split only;
the held-out split is only scored.
"""
from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from accelerate import Accelerator

from restlm import run_layout as layout
from restlm.atomic_files import write_json
from restlm.config import ExperimentConfig, keep_recorded_defaults, recorded_config, to_dict
from restlm.errors import ConfigError, RunDirError
from restlm.guards import distinct_n, kl_estimates
from restlm.kept_checkpoints import shrink_checkpoints
from restlm.methods import MethodRun, build_method, in_run_order
from restlm.methods.sft import fine_tune, metrics_only
from restlm.methods.variants import check_variants, config_for
from restlm.compare.carry import carry_records, keep_records, read_carried
from restlm.runs import RunDir, StageRunner
from restlm.tasks import build_task

EVAL_SEED = 12345  # the held-out samples of KL and distinct-2, the same for every method


@dataclass
class CompareSettings:
    """What a compare run is: the task config, the methods, seeds, the token budget, the evaluation."""

    config: ExperimentConfig
    methods: list[str]
    seeds: int = 1
    budget: int | None = None
    """sampled tokens an online method (PPO, GRPO, RLOO) may spend; None: as many as ReST's Grow steps of the same
    seed (or its section's max_sampled_tokens)"""
    eval_samples: int = 4
    """samples per held-out input (temperature 1) for KL to the start and distinct-2"""
    bootstrap: int = 1000
    """resamples of the confidence intervals"""
    carry: list[str] = field(default_factory=list)
    """other compare directories whose finished method runs are reused when their settings match"""
    command: str | None = None
    """the command line, for the record"""
    rerun: list[str] = field(default_factory=list)
    """methods whose finished records (every seed) are forgotten, so that they run again: after a fix, say"""
    keep_records: str | None = None
    """a folder that gets the finished method records (config.json, state.json, no weights) as each finishes:
    `carry` it when the run directory is lost"""

    def check(self) -> None:
        if self.seeds < 1:
            raise ConfigError("--seeds", f"must be at least 1, not {self.seeds}")
        if self.budget is not None and self.budget < 1:
            raise ConfigError("--budget", f"must be at least 1 sampled token, not {self.budget}")
        if self.eval_samples < 1:
            raise ConfigError("--eval-samples", f"must be at least 1, not {self.eval_samples}")
        if not self.methods:
            raise ConfigError("--methods", "name at least one method")
        for name in self.methods:
            missing = [n for n in build_method(name, self.config).needs if n not in self.methods]
            if missing:
                raise ConfigError("--methods", f"{name} reads the records of {', '.join(missing)}: add it")
        if len(set(self.methods)) != len(self.methods):
            raise ConfigError("--methods", f"names a method twice: {','.join(self.methods)}")
        if unknown := [n for n in self.rerun if n not in self.methods]:
            raise ConfigError("--rerun", f"{', '.join(unknown)} is not among --methods ({','.join(self.methods)})")
        for name in self.methods:
            method = build_method(name, self.config)
            reads = [*method.needs, *(["rest"] if method.online and self.budget is None else [])]
            if name not in self.rerun and (stale := [n for n in reads if n in self.rerun]):
                raise ConfigError("--rerun", f"{name} reads the records of {', '.join(stale)} (its runs, or without "
                                  "--budget its token budget): rerun it too")

    def recorded(self) -> dict:
        """What config.json holds: everything a finished stage depends on (methods and seeds may grow); of the
        variants, those in `methods` (the others are not run, so they may still change)."""
        experiment = to_dict(self.config)
        experiment["variants"] = {k: v for k, v in experiment["variants"].items() if k in self.methods}
        return {"experiment": experiment, "budget": self.budget, "eval_samples": self.eval_samples}


def compare(settings: CompareSettings, out: str | Path) -> dict:
    """Run (or finish) the comparison in `out`; write compare.json and the report; return the summary."""
    from restlm.compare.report import write_compare_report
    from restlm.compare.summary import summarise_compare

    settings.check()
    methods = {name: build_method(name, settings.config) for name in in_run_order(settings.methods)}
    accelerator = Accelerator()
    task = build_task(settings.config, accelerator)
    run = RunDir(out, is_main=accelerator.is_main_process)
    run.shown_metrics = task.stage_line_metrics()
    resume = run.holds_run()
    if resume:
        recorded = _recorded_config(run)
        _check_same(run, recorded, settings)
    else:
        run.check_new()
    task.load_data()
    keys = task.compare_keys()  # a task without a held-out proxy and gold is refused here
    policy = task.new_policy(0)
    task.check(run, policy)
    check_variants(task, settings.config, methods, policy)
    for name, method in methods.items():
        method.check(config_for(settings.config, name), policy)
        if method.needs_references and not task.sft_items():
            raise ConfigError("--methods", f"{name} trains on the task's references, and this task has none")
        if method.online and settings.budget is not None:
            method.check_budget(config_for(settings.config, name), settings.budget)
    inputs = task.input_fingerprints()
    carried = read_carried(settings)
    if resume:
        run.resume()
        run.check_inputs(inputs)
        _record_new_variants(run, recorded, settings)
        for seed in range(settings.seeds):
            for name in settings.rerun:
                run.forget(layout.method_prefix(seed, name))
        if settings.rerun and run.is_main:  # the old summary no longer holds: rewritten when the rerun ends
            for name in layout.COMPARE_OUTPUTS:
                (run.path / name).unlink(missing_ok=True)
        accelerator.wait_for_everyone()  # no process may read what the main one is still deleting
    else:
        run.create(settings.recorded(), inputs)
    try:
        carry_records(run, settings, methods, carried)
        accelerator.wait_for_everyone()  # every process has read the carried folders before one is written
        keep_records(run, settings)  # what is recorded or carried already
        for seed in range(settings.seeds):
            _run_seed(run, task, settings, methods, keys, seed, policy)
        summary = summarise_compare(run, task, settings, keys)
        if run.is_main:
            write_json(run.path / layout.COMPARE_SUMMARY, summary)
            write_compare_report(run.path, summary)
        return summary
    finally:
        run.close()


def _recorded_config(run: RunDir) -> dict:
    """The run's config.json as written."""
    try:
        return json.loads((run.path / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise RunDirError(f"{run.path}: unreadable config.json ({error})") from None


def _check_same(run: RunDir, recorded: dict, settings: CompareSettings) -> None:
    """A rerun into a compare directory must be the same comparison (more methods or seeds are fine). A key
    whose default changed since the run started is first set back on `settings.config` to the value recorded
    (keep_recorded_defaults), so the run goes on as it started."""
    recorded = copy.deepcopy(recorded)  # compared as loading gives it; the caller keeps the file's text
    if not isinstance(recorded, dict) or "experiment" not in recorded:
        raise RunDirError(f"{run.path}: holds a `restlm run`, not a comparison; pick another --out")
    kept = keep_recorded_defaults(settings.config, recorded["experiment"])  # a default changed since it started
    if kept and run.is_main:
        print(f"resuming with the recorded {', '.join(kept)} (today's default differs)", flush=True)
    now = settings.recorded()
    try:  # a key added to restlm since the run started counts at its default, as loading gives it
        recorded["experiment"] = to_dict(recorded_config(recorded["experiment"]))
    except ConfigError as error:
        raise RunDirError(f"{run.path}: its config.json no longer loads ({error})") from None
    now["experiment"]["run"] = recorded["experiment"]["run"]  # seeds, output_dir may differ
    # variants may be added, or changed until they have run; one with a stage may not change
    ran = _variants_run(run, recorded["experiment"]["variants"]) - set(settings.rerun)  # a rerun may change
    recorded["experiment"]["variants"] = {k: v for k, v in recorded["experiment"]["variants"].items() if k in ran}
    now["experiment"]["variants"] = {k: now["experiment"]["variants"].get(k, v)
                                     for k, v in recorded["experiment"]["variants"].items()}
    changed = sorted(_differing(recorded, now))
    if changed:
        raise RunDirError(f"{run.path}: holds a comparison with other settings ({', '.join(changed[:5])}); "
                          "pick another --out, or rerun with the same task config and flags to resume it")


def _variants_run(run: RunDir, variants: dict) -> set[str]:
    """The variants among `variants` with a stage recorded in the run's state.json (`seedS/NAME/...`)."""
    state = run.path / "state.json"
    stages = json.loads(state.read_text())["stages"] if state.exists() else {}
    return {layout.method_of_stage(key) for key in stages} & set(variants)


def _record_new_variants(run: RunDir, recorded: dict, settings: CompareSettings) -> None:
    """config.json records the variants this rerun runs (added, or changed before they ran), beside the ones
    that ran before: a later rerun checks them too."""
    variants = recorded["experiment"].get("variants") or {}
    now = settings.recorded()["experiment"]["variants"]
    merged = {**variants, **now}
    if merged != variants:
        recorded["experiment"]["variants"] = merged
        run.update_config(recorded)


def _differing(old, new, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        return [d for key in sorted(set(old) | set(new))
                for d in _differing(old.get(key), new.get(key), f"{prefix}{key}.")]
    return [] if old == new else [prefix.rstrip(".")]


def _run_seed(run: RunDir, task, settings: CompareSettings, methods: dict, keys: tuple[str, str, str], seed: int,
              first_policy) -> None:
    """Seed `seed`'s start and method runs; seed 0 trains `first_policy` (loaded for the checks), another seed a
    policy of its own, loaded only when a method run of it is left."""
    config, (_, proxy, gold) = settings.config, keys
    if all(run.stage(layout.method_final(seed, name)) is not None for name in methods):
        _seed_finished(run, methods, seed, config, first_policy)  # every method run recorded or carried: no start
        return
    policy = first_policy if seed == 0 else task.new_policy(seed)
    init, start_key = layout.seed_stage(seed, "init"), layout.compare_start(seed)
    stages = StageRunner(run, policy, in_memory=init)
    evaluate = _timed(task.evaluate)
    start = stages(start_key, lambda key: fine_tune(task, config, policy, seed, key), after=init, trains=True)
    reference = None  # the start policy, frozen, for KL; loaded when a method's final evaluation needs it
    for name, method in methods.items():
        final_key = layout.method_final(seed, name)
        if run.stage(final_key) is not None:
            continue
        if stages.in_memory != start_key:
            policy.load_weights(run.saved_weights(start_key))
            stages.in_memory = start_key
        budget = settings.budget
        if budget is None and method.online and "rest" in methods:
            budget = run.stage(layout.method_final(seed, "rest"))["sampled_tokens"] or None
        if run.is_main:  # one line, not one per process
            processes = policy.accelerator.num_processes
            print(f"== seed {seed}: {name}" + (f" ({processes} processes)" if processes > 1 else ""), flush=True)
        record = method.run(MethodRun(config_for(config, name), task, policy, stages, layout.method_prefix(seed, name),
                                      start_key, start, seed, budget, evaluate))
        if name != "sft" and reference is None:
            reference = task.new_policy(seed)
            reference.load_weights(run.saved_weights(start_key))
        stages(final_key, lambda key: _final(task, policy, None if name == "sft" else reference, name, record,
                                             (proxy, gold), settings.eval_samples), after=stages.in_memory, trains=False)
        keep_records(run, settings)  # --keep-records: this method run is safe from here on
    _seed_finished(run, methods, seed, config, policy)


def _seed_finished(run: RunDir, methods: dict, seed: int, config, policy) -> None:
    """The seed is finished: its methods' checkpoints are only read now (the start may be again), so they are kept
    in the run's checkpoint dtype."""
    for name in methods:
        shrink_checkpoints(run, layout.method_prefix(seed, name), config.run.checkpoint_dtype, policy.kind)
    policy.accelerator.wait_for_everyone()


def _timed(evaluate):
    """evaluate() with its own time in the record (`eval_s`), so a method's wall time can leave it out."""
    def timed(policy) -> dict:
        started = time.perf_counter()
        metrics = evaluate(policy)
        return {**metrics, "eval_s": time.perf_counter() - started}

    return timed


def _final(task, policy, reference, name: str, record: dict, keys: tuple[str, str], eval_samples: int) -> dict:
    """The chosen step's held-out proxy and gold (from its step metrics), its greedy held-out outputs and
    their gold scores (for the bootstraps), and KL to the start and distinct-2 of held-out samples."""
    started = time.perf_counter()
    examples = task.heldout()
    outputs = [o[0] for o in policy.sample(examples, greedy=True)]
    # each set in its own call, as evaluate() decodes them: batched greedy decoding depends on the batch
    other = {split: [o[0] for o in policy.sample(rows, greedy=True)] for split, rows in task.other_heldout().items()}
    sampled = [o for outs in policy.sample(examples, k=eval_samples, temperature=1.0, seed=EVAL_SEED) for o in outs]
    repeated = [e for e in examples for _ in range(eval_samples)]
    chosen = next(s for s in record["steps"] if s["step"] == record["chosen_step"])
    strings = all(isinstance(o, str) for o in sampled)
    kept = {k: v for k, v in record.items() if k not in ("checkpoint", "peak_memory_mb")}
    gold_scores = task.gold_scores(policy, examples, outputs)
    # the table's gold and its intervals come from the same outputs: these (the bootstraps use gold_of_rows too)
    gold = task.gold_of_rows(examples, outputs, gold_scores)(np.arange(len(examples)))
    # `kl` exact at each sampled position (never negative); `kl_sampled` the log-ratio at the sampled tokens, the
    # only one a record made before session 19 has (as its `kl`); one token pass of each model for both
    kl, kl_sampled = kl_estimates(policy, reference, repeated, sampled) if reference is not None else (0.0, 0.0)
    return {"method": name, **kept, "proxy": chosen[keys[0]], "gold": gold, "gold_at_chosen_step": chosen[keys[1]],
            "kl": kl, "kl_sampled": kl_sampled,
            "distinct2": distinct_n(sampled, 2) if strings else None,
            "heldout_outputs": outputs, "gold_scores": gold_scores, "other_heldout_outputs": other,
            "final_eval_s": time.perf_counter() - started, "start_metrics": metrics_only(record["steps"][0])}
