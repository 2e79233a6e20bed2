"""ReST against online RL (PPO) and DPO on the same reward: SmolLM2-135M-Instruct on two tasks.

    .venv/bin/python benchmarks/rest_vs_ppo.py           # about 40 minutes on a free 2-core machine
    .venv/bin/python benchmarks/rest_vs_ppo.py --prompts 4 --eval-prompts 4 --samples 2 --ppo-steps 1 \
        --max-new-tokens 8 --sft-examples 8 --sentiment-limit 64 --out /tmp/rvp_smoke --run-dir /tmp/rvp_smoke_runs

The ReST paper's comparison with online RL: every method starts from the same policy and optimises
the same proxy reward; a gold metric that no method sees judges them.

Tasks
  sentiment    continue the first 4-6 words of an IMDB sentence (UCI sentences) into a positive review.
               Proxy: p(positive) of the reward classifier (`sentiment:PATH`); gold: p(positive) of the
               gold classifier, trained on the other half of the sentences (both trained first when missing).
               Held-out prompts come from sentences neither classifier trained on. Start: the instruct model.
  translation  Multi30k De->En. Proxy: sentence chrF / 100; gold: corpus BLEU on held-out val sentences.
               Start: SFT on the first --sft-examples training pairs.
Methods, each from the task's start policy, on the same --prompts training prompts
  sft   the start policy itself
  rest  ReST: --grow-steps Grow steps of --samples samples per prompt, each followed by --improve-steps
        Improve steps (BC) keeping the samples at or above a per-prompt reward percentile (--thresholds)
  dpo   DPO on pairs from ReST's first Grow step (the start policy's samples): best against worst of
        the --samples of each prompt under the proxy
  ppo   restlm.ppo until it has sampled as many tokens as ReST's Grow steps (at most --ppo-steps steps)
Evaluation, the same --eval-prompts held-out prompts for every method: proxy and gold of greedy outputs;
kl (guards.kl_to_reference, to the start policy) and distinct2 of --eval-samples samples per prompt at
temperature 1. wall_time_s: the method's training alone (evaluation is eval_time_s).
OUT.json is rewritten after every (task, method) and a rerun with the same settings skips what is done
(ReST also resumes inside its run directory); OUT.md is written at the end.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator

from restlm.config import RestConfig, TrainConfig, TranslationConfig
from restlm.data.examples import Example
from restlm.data.parallel import load_multi30k
from restlm.data.preferences import PreferencePair
from restlm.data.sentiment import read_sentiment_sources
from restlm.dpo import DpoConfig, dpo
from restlm.guards import distinct_n, kl_to_reference
from restlm.policies.base import TrainItem
from restlm.policies.causal import CausalLMPolicy
from restlm.ppo import PPO, PPOConfig
from restlm.rest import ReST
from restlm.reward_models.sentiment import sentiment_splits, train_sentiment_role
from restlm.rewards import Reward, build_reward
from restlm.rewards.generation import corpus_bleu, corpus_chrf
from restlm.runs import read_jsonl, write_atomic, write_json
from restlm.training import train_policy

HERE = Path(__file__).resolve().parent
TASKS = ("sentiment", "translation")
METHODS = ("sft", "rest", "dpo", "ppo")  # in this order: dpo reads rest's Grow samples, ppo matches its tokens
MAX_NEW_TOKENS = {"sentiment": 24, "translation": 32}
SENTIMENT_PROMPT = "Continue this movie review: {text}"
SENTIMENT_SYSTEM = "You write movie reviews. Reply with the rest of the review only."
EVAL_SEED = 12345
UNSIZED = ("tasks", "methods", "out", "run_dir", "note")  # flags a resumed run may change


# ---------------------------------------------------------------- the tasks
@dataclass
class Bench:
    """One task as every method sees it."""

    name: str
    train: list[Example]  # the prompts ReST grows on, DPO's pairs come from and PPO trains on
    heldout: list[Example]  # the evaluation prompts, the same for every method
    reward: Reward  # the proxy, in [0, 1]
    gold: Callable[[list[Example], list[str]], dict]  # {"gold": .., extras} of outputs for the held-out prompts
    policy_args: dict  # prompt template, system prompt, max_new_tokens
    sft: list[Example] = field(default_factory=list)  # SFT pairs; none: the instruct model is the start
    original_data: str = "none"  # ReST's original-data mix: 'filtered' where the prompts have references
    info: dict = field(default_factory=dict)


def sentiment_bench(args, run_dir: Path) -> Bench:
    paths = {role: Path(getattr(args, f"{role}_model") or run_dir / f"sentiment_{role}") for role in ("reward", "gold")}
    info = {}
    for role, path in paths.items():
        if not (path / "config.json").exists():
            print(f"== training the sentiment {role} model into {path}", flush=True)
            train_sentiment_role(role, path, limit=args.sentiment_limit)
        metrics = json.loads((path / "metrics.json").read_text()) if (path / "metrics.json").exists() else {}
        info[f"{role}_model"] = {"path": str(path), **{k: metrics.get(k) for k in ("eval_accuracy", "train_examples")}}
    # the split the classifiers trained on (train_sentiment_role's defaults): "eval" is neither's
    splits = sentiment_splits(read_sentiment_sources())

    def openings(part: str) -> list[Example]:
        kept = [e for e in splits[part] if e.uid.startswith("imdb") and len(e.text.split()) >= 6]
        # 4 to 6 words, about half the sentence, so that something is left to continue
        return [Example(text=" ".join(e.text.split()[: max(4, min(6, len(e.text.split()) // 2))]), uid=e.uid,
                        meta={"sentence_label": e.label}) for e in kept]

    unseen = openings("eval")
    if len(unseen) < args.eval_prompts:
        raise SystemExit(f"only {len(unseen)} held-out IMDB sentences for --eval-prompts {args.eval_prompts}")
    pool = unseen[args.eval_prompts :] + openings("reward")  # then sentences the proxy (not the gold) saw
    gold_reward = build_reward(f"sentiment:{paths['gold']}", normalise=True)

    def gold(examples, outputs):
        p = gold_reward(None, examples, outputs)
        return {"gold": float(p.mean()), "gold_positive_rate": float((p > 0.5).mean())}

    info["train_prompts_unseen_by_both_models"] = min(args.prompts, len(unseen) - args.eval_prompts)
    return Bench("sentiment", pool[: args.prompts], unseen[: args.eval_prompts],
                 build_reward(f"sentiment:{paths['reward']}", normalise=True), gold,
                 {"prompt_template": SENTIMENT_PROMPT, "system_prompt": SENTIMENT_SYSTEM,
                  "max_new_tokens": args.max_new_tokens or MAX_NEW_TOKENS["sentiment"]}, info=info)


def translation_bench(args, run_dir: Path) -> Bench:
    train = load_multi30k(None, "train", limit=max(args.sft_examples, args.prompts))
    heldout = load_multi30k(None, "val", limit=args.eval_prompts)
    translation = TranslationConfig()

    def gold(examples, outputs):
        refs = [e.target for e in examples]
        return {"gold": corpus_bleu(outputs, refs), "gold_chrf": corpus_chrf(outputs, refs)}

    return Bench("translation", train[: args.prompts], heldout, build_reward("chrf", normalise=True), gold,
                 {"prompt_template": translation.prompt, "system_prompt": translation.system_prompt,
                  "max_new_tokens": args.max_new_tokens or MAX_NEW_TOKENS["translation"]},
                 sft=train[: args.sft_examples], original_data="filtered")


BENCHES = {"sentiment": sentiment_bench, "translation": translation_bench}


def new_policy(bench: Bench, args, weights: Path | None) -> CausalLMPolicy:
    policy = CausalLMPolicy.from_pretrained("smollm2", Accelerator(), batch_size=args.batch_size, **bench.policy_args)
    if weights is not None:
        policy.load_weights(weights)
    return policy


def train_config(args, learning_rate: float) -> TrainConfig:
    return TrainConfig(learning_rate=learning_rate, epochs=1, batch_size=args.train_batch_size)


# ---------------------------------------------------------------- the methods
def run_sft(bench: Bench, policy, args, folder: Path) -> dict:
    """The start policy: SFT on the task's pairs (saved to folder/sft), or the instruct model as it is."""
    if not bench.sft:
        return {"wall_time_s": 0.0, "sampled_tokens": 0, "start": "SmolLM2-135M-Instruct, not fine-tuned"}
    items = [TrainItem(e, e.target) for e in bench.sft]
    stats = train_policy(policy, items, train_config(args, args.sft_lr), args.sft_lr, 1, args.seed, description="sft")
    policy.save(folder / "sft")
    return {"wall_time_s": stats.wall_time_s, "sampled_tokens": 0, "sft_examples": len(items),
            "train_loss": stats.mean_loss, "start": f"SFT on {len(items)} Multi30k training pairs, 1 epoch"}


def run_rest(bench: Bench, policy, args, folder: Path) -> dict:
    """ReST from the start policy; leaves the last Improve step's weights in `policy`."""
    config = RestConfig(grow_steps=args.grow_steps, improve_steps=args.improve_steps, grow_sizes=[None],
                        samples_per_input=args.samples, sampling="sample", temperature=args.temperature,
                        reward=bench.reward.name, threshold="percentile", thresholds=args.thresholds,
                        original_data=bench.original_data, improve_learning_rate=args.improve_lr)
    # no per-step selection: the last Improve step is the result, as PPO's last step is
    rest = ReST(policy, bench.reward, bench.train, lambda p: {"dev_reward": 0.0}, config,
                train_config(args, args.improve_lr), run_dir=str(folder / "rest"), selection_metric="dev_reward")
    try:
        records = rest.fit(None, args.seed, prefix="rest", start="start", start_score=0.0)
        grows = [rest.run_dir.stage(f"rest/g{g}/grow") for g in range(1, args.grow_steps + 1)]
        last = records[-1]["checkpoint"]
        if rest.stages.in_memory != last:  # every stage replayed from an earlier run: load its result
            policy.load_weights(rest.run_dir.checkpoint_dir(last))
    finally:
        rest.run_dir.close()
    return {"wall_time_s": sum(g["wall_time_s"] for g in grows) + sum(r["wall_time_s"] for r in records),
            "sampled_tokens": sum(g["sampled_tokens"] for g in grows), "grow_inputs": len(bench.train),
            "grow_reward_mean": [g["grown_reward_mean"] for g in grows],
            "improve": [{k: r.get(k) for k in ("G", "I", "threshold", "kept", "kept_grown", "kept_mean_reward",
                                                "train_loss", "wall_time_s")} for r in records]}


def preference_pairs(bench: Bench, rest_dir: Path, limit: int | None) -> tuple[list[PreferencePair], int]:
    """Best against worst sample of each prompt in ReST's first Grow step; with its sampled tokens."""
    path = rest_dir / "grown" / "rest_g1_grow.jsonl"
    if not path.exists():
        raise SystemExit(f"dpo builds its pairs from ReST's first Grow step ({path}): run the rest method first")
    by_prompt = defaultdict(list)
    for row in read_jsonl(path):
        if row["source"] == "grown":
            by_prompt[row["index"]].append(row)
    pairs = []
    for index, rows in sorted(by_prompt.items()):
        best, worst = max(rows, key=lambda r: r["reward"]), min(rows, key=lambda r: r["reward"])
        if best["reward"] > worst["reward"]:  # a tie says nothing about preference
            pairs.append(PreferencePair(bench.train[index].text, best["output"], worst["output"], str(index)))
    grow = json.loads((rest_dir / "state.json").read_text())["stages"]["rest/g1/grow"]
    return pairs[:limit], grow["sampled_tokens"]


def run_dpo(bench: Bench, policy, args, folder: Path) -> dict:
    pairs, tokens = preference_pairs(bench, folder / "rest", args.dpo_pairs)
    if not pairs:
        raise SystemExit(f"{bench.name}: no prompt of ReST's first Grow step has samples of different rewards")
    stats = dpo(policy, pairs, DpoConfig(beta=args.dpo_beta, learning_rate=args.dpo_lr, epochs=args.dpo_epochs,
                                         batch_size=args.train_batch_size, seed=args.seed))
    return {"wall_time_s": stats.wall_time_s, "sampled_tokens": tokens, "pairs": len(pairs), "steps": stats.steps,
            "first_loss": (stats.losses or [None])[0], "last_loss": (stats.losses or [None])[-1]}


def run_ppo(bench: Bench, policy, args, folder: Path, budget: int | None) -> dict:
    config = PPOConfig(learning_rate=args.ppo_lr, batch_size=args.ppo_batch, max_new_tokens=policy.max_new_tokens,
                       temperature=args.temperature, kl_coef=args.kl_coef, total_steps=args.ppo_steps,
                       max_sampled_tokens=budget, seed=args.seed)
    ppo = PPO(policy, bench.reward, bench.train, config)
    start = time.perf_counter()
    history = ppo.train(folder / "ppo_metrics.jsonl")
    return {"wall_time_s": time.perf_counter() - start, "sampled_tokens": ppo.sampled_tokens, "token_budget": budget,
            "steps": len(history), "first_reward": history[0]["ppo/mean_reward"],
            "last_reward": history[-1]["ppo/mean_reward"], "last_kl": history[-1]["ppo/kl"],
            "mean_step_time_s": float(np.mean([m["charts/step_time_s"] for m in history]))}


# ---------------------------------------------------------------- evaluation
def evaluate(bench: Bench, policy, reference, args) -> dict:
    """Proxy and gold of greedy outputs; kl and distinct2 of samples at temperature 1 (what KL needs)."""
    start, examples, k = time.perf_counter(), bench.heldout, args.eval_samples
    greedy = [outputs[0] for outputs in policy.sample(examples, greedy=True)]
    sampled = [o for outputs in policy.sample(examples, k=k, temperature=1.0, seed=EVAL_SEED) for o in outputs]
    repeated = [e for e in examples for _ in range(k)]
    return {"proxy": float(bench.reward(policy, examples, greedy).mean()), **bench.gold(examples, greedy),
            "kl": kl_to_reference(policy, reference, repeated, sampled) if reference is not None else 0.0,
            "distinct2": distinct_n(sampled, 2),
            "proxy_sampled": float(bench.reward(policy, repeated, sampled).mean()),
            "gold_sampled": bench.gold(repeated, sampled)["gold"],
            "mean_greedy_words": float(np.mean([len(o.split()) for o in greedy])),
            "greedy_examples": [{"prompt": e.text, "output": o} for e, o in zip(examples[:3], greedy[:3], strict=True)],
            "eval_time_s": time.perf_counter() - start}


# ---------------------------------------------------------------- the loop, resumable per (task, method)
def task_entry(results: dict, bench: Bench) -> dict:
    entry = next((t for t in results["tasks"] if t["name"] == bench.name), None)
    if entry is None:
        entry = {"name": bench.name, "methods": []}
        results["tasks"].append(entry)
    entry.update(proxy=bench.reward.name, prompts=len(bench.train), eval_prompts=len(bench.heldout), **bench.info)
    return entry


def run_task(name: str, args, run_dir: Path, results: dict, save: Callable[[], None]) -> None:
    folder = run_dir / name
    bench = BENCHES[name](args, run_dir)
    entry = task_entry(results, bench)
    done = {m["method"]: m for m in entry["methods"]}
    start_weights = folder / "sft" if bench.sft else None
    if "sft" in done and start_weights is not None and not start_weights.exists():
        raise SystemExit(f"{start_weights} is gone but {args.out}.json records sft: delete it to start over")
    reference = None  # the start policy, for KL; loaded when a method needs it
    for method in [m for m in METHODS if m in args.methods and m not in done]:
        print(f"== {name}: {method}", flush=True)
        sft = method == "sft"
        if not sft and start_weights is not None and not start_weights.exists():
            raise SystemExit(f"{name}: {method} starts from the SFT policy; run the sft method first")
        policy = new_policy(bench, args, None if sft else start_weights)
        torch.manual_seed(args.seed)
        if sft:
            record = run_sft(bench, policy, args, folder)
        elif method == "rest":
            record = run_rest(bench, policy, args, folder)
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


def goal(results: dict) -> dict:
    """ReST ahead of PPO on the gold metric in every task (both tasks asked for)."""
    ahead = {}
    for task in results["tasks"]:
        rows = {m["method"]: m for m in task["methods"]}
        if "rest" in rows and "ppo" in rows:
            ahead[task["name"]] = rows["rest"]["gold"] > rows["ppo"]["gold"]
    return {"rest_ahead_of_ppo_on_gold": ahead, "met": set(ahead) == set(TASKS) and all(ahead.values())}


# ---------------------------------------------------------------- report
GOLD_NAMES = {"sentiment": "gold p(positive)", "translation": "gold corpus BLEU"}
PROXY_NAMES = {"sentiment": "proxy p(positive)", "translation": "proxy chrF/100"}


def markdown(results: dict) -> str:
    s = results["settings"]
    lines = ["# ReST against PPO and DPO on the same reward, SmolLM2-135M-Instruct", "",
             f"Machine: {results['machine']}  ", f"Command: `{results['command']}`  ",
             f"Total time: {results['benchmark_wall_time_s']:.0f} s (over every invocation that wrote these results; "
             "evaluation and the sentiment classifiers included).", ""]
    for task in results["tasks"]:
        lines += [f"## {task['name']}", "", (f"{task['prompts']} training prompts, {task['eval_prompts']} held-out "
                                             f"prompts; proxy reward `{task['proxy']}`.")]
        for role in ("reward_model", "gold_model"):
            if role in task:
                lines.append(f"Sentiment {role.replace('_', ' ')} (MiniLM): held-out accuracy "
                             f"{task[role]['eval_accuracy']:.3f}, {task[role]['train_examples']} training sentences.")
        if "train_prompts_unseen_by_both_models" in task:
            lines.append(f"Held-out prompts: openings of sentences neither classifier trained on; training prompts: "
                         f"{task['train_prompts_unseen_by_both_models']} such openings, then openings of the proxy "
                         "classifier's sentences. Both classifiers score the continuation alone.")
        lines += ["", (f"| method | {PROXY_NAMES[task['name']]} | {GOLD_NAMES[task['name']]} | KL to start "
                       "| distinct-2 | sampled tokens | train time (s) | eval time (s) | |"),
                  "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
        for m in task["methods"]:
            lines.append(f"| {m['method']} | {m['proxy']:.4f} | {m['gold']:.4f} | {m['kl']:.3f} | {m['distinct2']:.3f} "
                         f"| {m['sampled_tokens']} | {m['wall_time_s']:.0f} | {m['eval_time_s']:.0f} | {detail(m)} |")
        lines.append("")
        for m in task["methods"]:
            example = m["greedy_examples"][0]
            lines.append(f"- {m['method']}: `{example['prompt']}` -> `{example['output']}`")
        lines.append("")
    g = results["goal"]
    ahead = g["rest_ahead_of_ppo_on_gold"]
    verdict = ", ".join(f"{t}: {'yes' if ok else 'no'}" for t, ok in ahead.items()) or "not run"
    lines += [(f"**Goal** (ReST ahead of PPO on the gold metric in both tasks): {verdict}. "
               f"Met: {'yes' if g['met'] else 'no'}."), "",
              f"Settings: {', '.join(f'{k}={v}' for k, v in s.items())}.", ""]
    lines += [f"- {note}" for note in results["notes"]]
    return "\n".join(lines) + "\n"


def detail(m: dict) -> str:
    if m["method"] == "rest":
        return "kept " + "/".join(str(i["kept"]) for i in m["improve"]) + " rows per Improve step"
    if m["method"] == "dpo":
        return f"{m['pairs']} pairs, {m['steps']} steps"
    if m["method"] == "ppo":
        return (f"{m['steps']} step(s), token budget {m['token_budget']}, "
                f"train reward {m['first_reward']:.3f} -> {m['last_reward']:.3f}")
    return m.get("start", "")


NOTES = [
    ("All methods start from the task's start policy (the sft row) and optimise the same proxy reward, "
     "normalised to [0, 1]: p(positive) of the reward classifier for sentiment, sentence chrF / 100 for translation."),
    ("proxy and gold: of greedy outputs of the held-out prompts (translation's gold: corpus BLEU, sacrebleu "
     "defaults). kl: mean over samples (temperature 1, from the method's policy) of log p - log p_start, whole-output "
     "log-probs with EOS appended (a sample cut at max_new_tokens is scored as if it ended there); an unbiased "
     "estimate, so on few samples it can come out negative. distinct2: distinct bigrams / bigrams over the same "
     "samples. proxy_sampled and gold_sampled in the JSON: the same metrics on those samples."),
    ("sampled_tokens: tokens generated while training (EOS included). ReST: its Grow steps. DPO: ReST's first "
     "Grow step, whose samples it ranks (their sampling time is in rest's train time, not dpo's). PPO runs until "
     "it has sampled at least ReST's tokens (at most --ppo-steps steps), so its budget may pass ReST's by one step."),
    ("ReST does no per-step selection: the last Improve step is its result. Sentiment prompts have no reference "
     "outputs, so its Improve steps train on the kept samples alone; translation adds the filtered original pairs."),
    ("One seed and no hyper-parameter search: learning rates and KL coefficient are set once (see settings). "
     "With this few held-out prompts, differences of a few hundredths of p(positive) or about a BLEU point are noise."),
]


# ---------------------------------------------------------------- main
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", default=",".join(TASKS), help=f"comma-separated, of {', '.join(TASKS)}")
    p.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated, of {', '.join(METHODS)}")
    p.add_argument("--prompts", type=int, default=48, help="training prompts (ReST grows on all of them)")
    p.add_argument("--eval-prompts", type=int, default=64, help="held-out prompts every method is scored on")
    p.add_argument("--eval-samples", type=int, default=1, help="samples per held-out prompt for kl and distinct2")
    p.add_argument("--max-new-tokens", type=int, default=None,
                   help=f"output cap of every task (default per task: {MAX_NEW_TOKENS})")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature of ReST's Grow and of PPO")
    p.add_argument("--sft-examples", type=int, default=200, help="translation: Multi30k training pairs of the SFT")
    p.add_argument("--sft-lr", type=float, default=5e-5, help="translation: learning rate of the SFT")
    p.add_argument("--grow-steps", type=int, default=1, help="ReST Grow steps")
    p.add_argument("--improve-steps", type=int, default=2, help="ReST Improve steps per Grow step")
    p.add_argument("--samples", type=int, default=4, help="samples per prompt of a Grow step (and for DPO's pairs)")
    p.add_argument("--thresholds", type=lambda s: [float(x) for x in s.split(",")], default=[0.5, 0.75],
                   help="per-prompt reward percentiles of the Improve steps (the last repeats)")
    p.add_argument("--improve-lr", type=float, default=2e-5, help="learning rate of Improve step 1 (then halved)")
    p.add_argument("--ppo-steps", type=int, default=40, help="PPO steps at most (it stops at ReST's sampled tokens)")
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
    p.add_argument("--reward-model", help="sentiment proxy classifier (default RUN_DIR/sentiment_reward; made if none)")
    p.add_argument("--gold-model", help="sentiment gold classifier (default RUN_DIR/sentiment_gold; made if none)")
    p.add_argument("--sentiment-limit", type=int, default=None, help="training sentences per classifier (smoke runs)")
    p.add_argument("--run-dir", help="checkpoints, ReST and PPO runs (default benchmarks/runs/<name of OUT>)")
    p.add_argument("--out", default=str(HERE / "results" / "rest_vs_ppo"), help="writes OUT.json and OUT.md")
    p.add_argument("--note", action="append", default=[])
    args = p.parse_args(argv)
    args.tasks, args.methods = [t for t in args.tasks.split(",") if t], [m for m in args.methods.split(",") if m]
    for given, known in ((args.tasks, TASKS), (args.methods, METHODS)):
        if unknown := set(given) - set(known):
            p.error(f"unknown {sorted(unknown)}; choose from {', '.join(known)}")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    out = Path(args.out)
    run_dir = Path(args.run_dir or HERE / "runs" / out.name)
    settings = {k: v for k, v in vars(args).items() if k not in UNSIZED}
    path = out.with_suffix(".json")
    previous = json.loads(path.read_text()) if path.exists() else {}
    recorded = json.loads((run_dir / "settings.json").read_text()) if (run_dir / "settings.json").exists() else None
    for where, old in ((path, previous.get("settings")), (run_dir, recorded)):
        if old is not None and old != settings:
            changed = sorted(k for k in settings if old.get(k) != settings[k])
            raise SystemExit(f"{where} holds a run with other settings ({', '.join(changed)}): pick another --out "
                             "and --run-dir, or delete them to start over")
    write_json(run_dir / "settings.json", settings)
    started, earlier = time.perf_counter(), previous.get("benchmark_wall_time_s", 0.0)  # a resumed run adds up
    results = {"machine": (f"{platform.node()}: {platform.processor() or platform.machine()}, "
                           f"{torch.get_num_threads()} torch threads, no GPU, "
                           f"load average {os.getloadavg()[0]:.1f} at start"),
               "command": " ".join(["python", *sys.argv]), "settings": settings, "tasks": previous.get("tasks", [])}

    def save():
        results.update(goal=goal(results), notes=NOTES + args.note,
                       benchmark_wall_time_s=earlier + time.perf_counter() - started)
        write_json(path, results)

    for name in args.tasks:
        run_task(name, args, run_dir, results, save)
    save()
    write_atomic(out.with_suffix(".md"), markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
