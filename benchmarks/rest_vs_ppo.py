"""ReST against online RL (PPO) and DPO on the same reward: SmolLM2-135M-Instruct on two tasks.

    .venv/bin/python benchmarks/rest_vs_ppo.py           # about an hour on a free 2-core machine
    .venv/bin/python benchmarks/rest_vs_ppo.py --prompts 4 --dev-prompts 4 --eval-prompts 4 --samples 2 \
        --ppo-steps 2 --eval-every 1 --max-new-tokens 8 --sft-examples 8 --sentiment-limit 64 \
        --out /tmp/rvp_smoke --run-dir /tmp/rvp_smoke_runs

The ReST paper's comparison with online RL: every method starts from the same policy and optimises
the same proxy reward; a gold metric that no method sees judges them.

Tasks
  sentiment    continue the first 4-6 words of an IMDB sentence (UCI sentences) into a positive review.
               Proxy: p(positive) of the reward classifier (`sentiment:PATH`); gold: p(positive) of the
               gold classifier, trained on the other half of the sentences (both trained first when missing).
               Held-out prompts: openings of the 85 sentences neither classifier trained on, then of the gold's
               (never the proxy's; both score the continuation alone). Start: the instruct model.
               (The tasks live in rest_vs_ppo_tasks.py, the methods in rest_vs_ppo_methods.py.)
  translation  Multi30k De->En. Proxy: sentence chrF / 100; gold: corpus BLEU on held-out val sentences.
               Start: SFT on the first --sft-examples training pairs.
Methods, each from the task's start policy, on the same --prompts training prompts
  sft   the start policy itself
  rest  ReST: --grow-steps Grow steps of --samples samples per prompt at --grow-temperature, each followed
        by --improve-steps Improve steps (BC) keeping the samples at or above a per-prompt reward
        percentile (--thresholds; with --threshold rising, absolute proxy values); --improve-kl adds
        a KL penalty to the start policy to the Improve loss (rest.improve_kl_coef); --improve-epochs
        passes over the kept rows per Improve step
  dpo   DPO on pairs from ReST's first Grow step (the start policy's samples): best against worst of
        the --samples of each prompt under the proxy
  ppo   restlm.ppo until it has sampled as many tokens as ReST's Grow steps (at most --ppo-steps steps)
Step selection, the same for ReST and PPO: both are evaluated at each step (PPO every --eval-every steps)
and end at the step of highest proxy on --dev-prompts dev prompts (the start included); the report
lists every evaluated step with its held-out proxy and gold, flagged where the proxy rose and gold fell.
Evaluation, the same --eval-prompts held-out prompts for every method: proxy and gold of greedy outputs;
kl (guards.kl_to_reference, to the start policy) and distinct2 of --eval-samples samples per prompt at
temperature 1. wall_time_s: the method's training alone (evaluation is eval_time_s).
Each task keeps the settings (flags) it ran with, so tasks may be run with different flags into one OUT
(`--tasks sentiment --threshold rising ...`, then `--tasks translation ...`). Gold differences of ReST
against every other method come with a paired bootstrap interval over the held-out prompts.
--carry-method FILE:TASK:METHOD takes a finished method from another results file instead of running
it, when that run had the same value of every flag the method reads (e.g. rerun ReST alone with other
Improve flags against the same PPO); the report names the flags of other methods that differed.
OUT.json is rewritten after every (task, method) and a rerun of a task with its settings skips what is
done (ReST also resumes inside its run directory); OUT.md is written at the end.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from rest_vs_ppo_methods import evaluate, new_policy, run_dpo, run_ppo, run_rest, run_sft
from rest_vs_ppo_report import NOTES, every_task_carried, goal, markdown
from rest_vs_ppo_tasks import BENCHES, MAX_NEW_TOKENS, TASKS, Bench

from restlm.runs import write_atomic, write_json
from restlm.stats import paired_bootstrap

HERE = Path(__file__).resolve().parent
METHODS = ("sft", "rest", "dpo", "ppo")  # in this order: dpo reads rest's Grow samples, ppo matches its tokens
UNSIZED = ("tasks", "methods", "out", "run_dir", "note", "bootstrap", "report_only", "carry_task",
           "carry_method")  # flags a resumed run may change
# the flags only one method reads (the rest are every method's: prompts, evaluation, the start policy);
# DPO's pairs are ReST's first Grow step, so DPO reads its sampling flags too. PPO's token budget is
# ReST's sampled tokens: a carried PPO keeps the budget it ran with (its record's sampled_tokens)
METHOD_FLAGS = {"sft": set(),
                "rest": {"grow_steps", "improve_steps", "samples", "threshold", "thresholds", "improve_lr", "improve_kl",
                         "improve_epochs", "grow_temperature"},
                "dpo": {"dpo_pairs", "dpo_epochs", "dpo_lr", "dpo_beta", "samples", "grow_temperature"},
                "ppo": {"ppo_steps", "ppo_batch", "ppo_lr", "kl_coef", "temperature", "eval_every"}}


# ---------------------------------------------------------------- the loop, resumable per (task, method)
def task_entry(results: dict, name: str, settings: dict, folder: Path) -> dict:
    """The task's record in the results, checked against the settings it was run with (each task has its own)."""
    entry = next((t for t in results["tasks"] if t["name"] == name), None)
    recorded = json.loads((folder / "settings.json").read_text()) if (folder / "settings.json").exists() else None
    for where, old in (("the results file", (entry or {}).get("settings")), (folder, recorded)):
        if old is not None and (changed := sorted(differing_flags(old, settings, settings))):
            raise SystemExit(f"{where} holds a {name} run with other settings ({', '.join(changed)}): pick another "
                             "--out and --run-dir, or delete the task's record and folder to start over")
    if entry is None:
        entry = {"name": name, "methods": []}
        results["tasks"].append(entry)
    write_json(folder / "settings.json", settings)
    entry.update(settings=settings, command=results["command"])
    return entry


def recorded_value(settings: dict, key: str):
    """A flag's value in recorded settings; a flag added since they were written had its default."""
    return settings[key] if key in settings else DEFAULTS.get(key)


def differing_flags(old: dict, new: dict, keys) -> list[str]:
    """The flags among `keys` (in their order) whose values in two recorded settings differ."""
    return [k for k in keys if recorded_value(old, k) != recorded_value(new, k)]


def compare_gold(bench: Bench, entry: dict, rounds: int, seed: int) -> None:
    """Paired bootstraps over the held-out prompts of gold(ReST) - gold(other) for every other method."""
    rows = {m["method"]: m for m in entry["methods"] if "heldout_outputs" in m}
    if "rest" not in rows:
        return
    rest = bench.gold_of_rows(bench.heldout, rows["rest"]["heldout_outputs"])
    entry["gold_difference"] = {
        f"rest-{other}": paired_bootstrap(rest, bench.gold_of_rows(bench.heldout, rows[other]["heldout_outputs"]),
                                          len(bench.heldout), rounds, seed)
        for other in METHODS if other in rows and other != "rest"}


def run_task(name: str, args, run_dir: Path, results: dict, save: Callable[[], None]) -> None:
    folder = run_dir / name
    settings = {k: v for k, v in vars(args).items() if k not in UNSIZED}
    entry = task_entry(results, name, settings, folder)
    bench = BENCHES[name](args, run_dir)
    entry.update(proxy=bench.reward.name, prompts=len(bench.train), dev_prompts=len(bench.dev),
                 eval_prompts=len(bench.heldout), **bench.info)
    done = {m["method"]: m for m in entry["methods"]}
    for spec in args.carry_method:
        file, task, method = carry_method_spec(spec)
        if task == name and method not in done:
            done[method] = carried_method(spec, file, method, settings, bench, entry)
    entry["methods"] = [done[m] for m in METHODS if m in done]
    start_weights = folder / "sft" if bench.sft else None
    if "sft" in done and start_weights is not None and not start_weights.exists():
        raise SystemExit(f"{start_weights} is gone but {args.out}.json records sft: delete it to start over")

    def reload_start(policy) -> None:  # back to the start policy's weights
        policy.unwrapped.load_state_dict(new_policy(bench, args, start_weights).unwrapped.state_dict())

    reference = None  # the start policy, for KL; loaded when a method needs it
    for method in [m for m in METHODS if m in args.methods and m not in done]:
        print(f"== {name}: {method}", flush=True)
        sft = method == "sft"
        if not sft and "sft" not in done:
            raise SystemExit(f"{name}: {method} starts from the start policy and its evaluation; run the sft method first")
        policy = new_policy(bench, args, None if sft else start_weights)
        torch.manual_seed(args.seed)
        if sft:
            record = run_sft(bench, policy, args, folder)
        elif method == "rest":
            record = run_rest(bench, policy, args, folder, done["sft"]["steps_evaluated"][0], reload_start)
        elif method == "dpo":
            record = run_dpo(bench, policy, args, folder)
        else:
            budget = done["rest"]["sampled_tokens"] if "rest" in done else None
            record = run_ppo(bench, policy, args, folder, budget)
        if not sft and reference is None:
            reference = new_policy(bench, args, start_weights)
        record = {"method": method, **record, **evaluate(bench, policy, None if sft else reference, args)}
        done[method] = record
        entry["methods"] = [done[m] for m in METHODS if m in done]
        save()
        print(f"== {name} {method}: proxy {record['proxy']:.4f} gold {record['gold']:.4f} kl {record['kl']:.3f} "
              f"distinct2 {record['distinct2']:.3f} train {record['wall_time_s']:.0f} s "
              f"eval {record['eval_time_s']:.0f} s", flush=True)
        del policy
        gc.collect()
    compare_gold(bench, entry, args.bootstrap, args.seed)
    save()


def carry_task(results: dict, spec: str) -> None:
    """Put the record of a task from another results file (FILE:TASK) in place of this file's record of it."""
    file, _, name = spec.rpartition(":")
    other = read_results(f"--carry-task {spec}", file)
    entry = next((t for t in task_records(other) if t["name"] == name), None)
    if entry is None:
        raise SystemExit(f"--carry-task {spec}: {file} has no task {name!r}")
    entry.update(carried_from=file, machine=other.get("machine"))
    results["tasks"] = [t for t in results["tasks"] if t["name"] != name] + [entry]


def read_results(flag: str, file: str) -> dict:
    try:
        return json.loads(Path(file).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise SystemExit(f"{flag}: cannot read {file} ({error})") from None


def carry_method_spec(spec: str) -> tuple[str, str, str]:
    parts = spec.rsplit(":", 2)
    if len(parts) != 3 or parts[1] not in TASKS or parts[2] not in METHODS:
        raise SystemExit(f"--carry-method {spec}: expected FILE:TASK:METHOD (TASK of {', '.join(TASKS)}, "
                         f"METHOD of {', '.join(METHODS)})")
    return parts[0], parts[1], parts[2]


def carried_method(spec: str, file: str, method: str, settings: dict, bench: Bench, entry: dict) -> dict:
    """A finished method's record from another results file, run with this run's value of every flag
    the method reads, the same proxy and gold models and the same held-out prompts; `carried_settings`
    holds the other methods' flags that differed."""
    task = bench.name
    other = read_results(f"--carry-method {spec}", file)
    other_entry = next((t for t in task_records(other) if t["name"] == task), {})
    record = next((m for m in other_entry.get("methods", []) if m["method"] == method), None)
    if record is None:
        raise SystemExit(f"--carry-method {spec}: {file} has no {method} record of task {task!r}")
    others_only = set().union(*(flags for m, flags in METHOD_FLAGS.items() if m != method)) - METHOD_FLAGS[method]
    old = other_entry.get("settings") or {}
    # the classifiers are compared by where they were loaded from (a flag or the run directory's default)
    models = ("reward_model", "gold_model")
    changed = differing_flags(old, settings, [k for k in settings if k not in others_only and k not in models])
    if other_entry.get("proxy") != entry.get("proxy"):
        changed.append(f"proxy {other_entry.get('proxy')}")
    if (other_entry.get("gold_model") or {}).get("path") != (entry.get("gold_model") or {}).get("path"):
        changed.append("gold_model")
    if [e["prompt"] for e in record["greedy_examples"]] != [e.text for e in bench.heldout[: len(record["greedy_examples"])]]:
        changed.append("held-out prompts")
    if changed:
        raise SystemExit(f"--carry-method {spec}: its run differs in what {method} reads ({', '.join(changed)})")
    others = sorted(others_only & settings.keys())
    differing = {k: recorded_value(old, k) for k in differing_flags(old, settings, others)}
    return {**record, "carried_from": file, "carried_settings": differing}


def task_records(results: dict) -> list[dict]:
    """The task records of a results file, each with its settings and command (a file written before
    tasks kept their own has one settings for all, at the top)."""
    for task in results.get("tasks", []):
        task.setdefault("settings", results.get("settings"))
        task.setdefault("command", results.get("command"))
    return results.get("tasks", [])


# ---------------------------------------------------------------- main
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", default=",".join(TASKS), help=f"comma-separated, of {', '.join(TASKS)}")
    p.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated, of {', '.join(METHODS)}")
    p.add_argument("--prompts", type=int, default=32, help="training prompts (ReST grows on all of them)")
    p.add_argument("--dev-prompts", type=int, default=32, help="held-out prompts whose proxy selects each method's step")
    p.add_argument("--eval-prompts", type=int, default=64, help="held-out prompts every method is scored on")
    p.add_argument("--eval-samples", type=int, default=1, help="samples per held-out prompt for kl and distinct2")
    p.add_argument("--eval-every", type=int, default=4, help="PPO steps between evaluations (and after the last)")
    p.add_argument("--max-new-tokens", type=int, default=None,
                   help=f"output cap of every task (default per task: {MAX_NEW_TOKENS})")
    p.add_argument("--temperature", type=float, default=1.0, help="PPO's sampling temperature (on-policy)")
    p.add_argument("--grow-temperature", type=float, default=0.8, help="sampling temperature of ReST's Grow steps")
    p.add_argument("--sft-examples", type=int, default=200, help="translation: Multi30k training pairs of the SFT")
    p.add_argument("--sft-lr", type=float, default=5e-5, help="translation: learning rate of the SFT")
    p.add_argument("--grow-steps", type=int, default=2, help="ReST Grow steps")
    p.add_argument("--improve-steps", type=int, default=2, help="ReST Improve steps per Grow step")
    p.add_argument("--samples", type=int, default=4, help="samples per prompt of a Grow step (and for DPO's pairs)")
    p.add_argument("--threshold", choices=("percentile", "rising"), default="percentile",
                   help="percentile: --thresholds are per-prompt reward percentiles; rising: absolute proxy values")
    p.add_argument("--thresholds", type=lambda s: [float(x) for x in s.split(",")], default=[0.5, 0.75],
                   help="one per Improve step (the last repeats), as --threshold says")
    p.add_argument("--improve-lr", type=float, default=1e-5, help="learning rate of Improve step 1 (then halved)")
    p.add_argument("--improve-epochs", type=int, default=1, help="passes over the kept rows in each Improve step")
    p.add_argument("--improve-kl", type=float, default=0.0,
                   help="ReST: coefficient of KL(policy || start) over each kept output's tokens in the Improve loss")
    p.add_argument("--ppo-steps", type=int, default=80, help="PPO steps at most (it stops at ReST's sampled tokens)")
    p.add_argument("--ppo-batch", type=int, default=8, help="prompts per PPO step (one sample each)")
    p.add_argument("--ppo-lr", type=float, default=3e-6, help="PPO learning rate (PPOConfig's default)")
    p.add_argument("--kl-coef", type=float, default=0.05, help="PPO's per-token KL penalty")
    p.add_argument("--dpo-pairs", type=int, default=None, help="DPO pairs at most (default: one per Grow prompt)")
    p.add_argument("--dpo-epochs", type=int, default=2, help="passes over the DPO pairs")
    p.add_argument("--dpo-lr", type=float, default=1e-5, help="DPO learning rate")
    p.add_argument("--dpo-beta", type=float, default=0.1, help="DPO beta")
    p.add_argument("--train-batch-size", type=int, default=8, help="batch of SFT, Improve steps and DPO")
    p.add_argument("--batch-size", type=int, default=16, help="generation and scoring batch")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bootstrap", type=int, default=1000, help="resamples of the paired bootstrap of gold differences")
    p.add_argument("--reward-model", help="sentiment proxy classifier (default RUN_DIR/sentiment_reward; made if none)")
    p.add_argument("--gold-model", help="sentiment gold classifier (default RUN_DIR/sentiment_gold; made if none)")
    p.add_argument("--sentiment-limit", type=int, default=None, help="training sentences per classifier (smoke runs)")
    p.add_argument("--run-dir", help="checkpoints, ReST and PPO runs (default benchmarks/runs/<name of OUT>)")
    p.add_argument("--out", default=str(HERE / "results" / "rest_vs_ppo"), help="writes OUT.json and OUT.md")
    p.add_argument("--note", action="append", default=[])
    p.add_argument("--report-only", action="store_true",
                   help="run nothing: recompute OUT.json's goal (after any --carry-task) and rewrite OUT.md")
    p.add_argument("--carry-task", action="append", default=[], metavar="FILE:TASK",
                   help="copy TASK's finished record (its settings and command with it) from another results FILE")
    p.add_argument("--carry-method", action="append", default=[], metavar="FILE:TASK:METHOD",
                   help="take METHOD's finished record of TASK from another results FILE instead of running it "
                        "(its run must have had this run's values of every flag the method reads)")
    args = p.parse_args(argv)
    args.tasks, args.methods = [t for t in args.tasks.split(",") if t], [m for m in args.methods.split(",") if m]
    for given, known in ((args.tasks, TASKS), (args.methods, METHODS)):
        if unknown := set(given) - set(known):
            p.error(f"unknown {sorted(unknown)}; choose from {', '.join(known)}")
    return args


DEFAULTS = vars(parse_args([]))


def machine() -> str:
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    return (f"{platform.node()}: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
            f"{device}, load average {os.getloadavg()[0]:.1f} at start")


def main(argv=None) -> None:
    args = parse_args(argv)
    out = Path(args.out)
    run_dir = Path(args.run_dir or HERE / "runs" / out.name)
    path = out.with_suffix(".json")
    previous = json.loads(path.read_text()) if path.exists() else {}
    started, earlier = time.perf_counter(), previous.get("benchmark_wall_time_s", 0.0)  # a resumed run adds up
    results = {"machine": previous.get("machine") if args.report_only else machine(), "command": " ".join(["python", *sys.argv]),
               "tasks": task_records(previous)}
    for spec in args.carry_task:
        carry_task(results, spec)
    if every_task_carried(results):
        earlier = 0.0  # every task ran in its own file: the time this file's earlier invocations took is not theirs

    def save():
        results.update(goal=goal(results), notes=NOTES + args.note,
                       benchmark_wall_time_s=earlier + time.perf_counter() - started)
        write_json(path, results)

    if not args.report_only:
        for name in args.tasks:
            run_task(name, args, run_dir, results, save)
    save()
    write_atomic(out.with_suffix(".md"), markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
