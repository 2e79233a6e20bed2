"""The methods of benchmarks/rest_vs_ppo.py (SFT start, ReST, DPO, PPO) and their evaluation.

Every method starts from the task's start policy and sees the same proxy. ReST and PPO are
evaluated at every step (ReST: each Improve step; PPO: every --eval-every steps) on the dev and
held-out prompts, and each ends at its step of highest dev proxy (the start included).
"""
from __future__ import annotations

import json
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from accelerate import Accelerator
from rest_vs_ppo_tasks import Bench

from restlm.config import RestConfig, TrainConfig
from restlm.dpo import DpoConfig, dpo
from restlm.guards import distinct_n, kl_to_reference
from restlm.policies.base import TrainItem
from restlm.policies.causal import CausalLMPolicy
from restlm.ppo import PPO, PPOConfig
from restlm.rest import ReST
from restlm.runs import read_jsonl
from restlm.training import train_policy

EVAL_SEED = 12345


def new_policy(bench: Bench, args, weights: Path | None) -> CausalLMPolicy:
    policy = CausalLMPolicy.from_pretrained("smollm2", Accelerator(), batch_size=args.batch_size, **bench.policy_args)
    if weights is not None:
        policy.load_weights(weights)
    return policy


def train_config(args, learning_rate: float) -> TrainConfig:
    return TrainConfig(learning_rate=learning_rate, epochs=1, batch_size=args.train_batch_size)


# ---------------------------------------------------------------- evaluation
def greedy(policy, examples) -> list[str]:
    return [outputs[0] for outputs in policy.sample(examples, greedy=True)]


def step_metrics(bench: Bench, policy) -> dict:
    """What each step is judged by: the proxy of greedy outputs on the dev prompts (selection), and the
    proxy and gold of greedy outputs on the held-out prompts (the guard: proxy up while gold falls)."""
    start = time.perf_counter()
    dev_outputs, outputs = greedy(policy, bench.dev), greedy(policy, bench.heldout)
    return {"dev_proxy": float(bench.reward(policy, bench.dev, dev_outputs).mean()),
            "proxy": float(bench.reward(policy, bench.heldout, outputs).mean()),
            "gold": bench.gold(bench.heldout, outputs)["gold"], "step_eval_s": time.perf_counter() - start}


def evaluate(bench: Bench, policy, reference, args) -> dict:
    """Proxy and gold of greedy outputs; kl and distinct2 of samples at temperature 1 (what KL needs)."""
    start, examples, k = time.perf_counter(), bench.heldout, args.eval_samples
    outputs = greedy(policy, examples)
    sampled = [o for outs in policy.sample(examples, k=k, temperature=1.0, seed=EVAL_SEED) for o in outs]
    repeated = [e for e in examples for _ in range(k)]
    return {"proxy": float(bench.reward(policy, examples, outputs).mean()), **bench.gold(examples, outputs),
            "kl": kl_to_reference(policy, reference, repeated, sampled) if reference is not None else 0.0,
            "distinct2": distinct_n(sampled, 2),
            "proxy_sampled": float(bench.reward(policy, repeated, sampled).mean()),
            "gold_sampled": bench.gold(repeated, sampled)["gold"],
            "mean_greedy_words": float(np.mean([len(o.split()) for o in outputs])),
            "greedy_examples": [{"prompt": e.text, "output": o} for e, o in zip(examples[:3], outputs[:3], strict=True)],
            "heldout_outputs": outputs, "eval_time_s": time.perf_counter() - start}


# ---------------------------------------------------------------- the methods
def run_sft(bench: Bench, policy, args, folder: Path) -> dict:
    """The start policy: SFT on the task's pairs (saved to folder/sft), or the instruct model as it is."""
    if not bench.sft:
        record = {"wall_time_s": 0.0, "sampled_tokens": 0, "start": "SmolLM2-135M-Instruct, not fine-tuned"}
    else:
        items = [TrainItem(e, e.target) for e in bench.sft]
        stats = train_policy(policy, items, train_config(args, args.sft_lr), args.sft_lr, 1, args.seed, description="sft")
        policy.save(folder / "sft")
        record = {"wall_time_s": stats.wall_time_s, "sampled_tokens": 0, "sft_examples": len(items),
                  "train_loss": stats.mean_loss, "start": f"SFT on {len(items)} Multi30k training pairs, 1 epoch"}
    return {**record, "steps_evaluated": [{"step": "start", "sampled_tokens": 0, **step_metrics(bench, policy)}]}


def run_rest(bench: Bench, policy, args, folder: Path, start: dict, reload_start) -> dict:
    """ReST from the start policy; leaves the weights of its step of highest dev proxy in `policy`."""
    config = RestConfig(grow_steps=args.grow_steps, improve_steps=args.improve_steps, grow_sizes=[None],
                        samples_per_input=args.samples, sampling="sample", temperature=args.grow_temperature,
                        reward=bench.reward.name, threshold=args.threshold, thresholds=args.thresholds,
                        original_data=bench.original_data, improve_learning_rate=args.improve_lr,
                        improve_kl_coef=args.improve_kl, improve_epochs=args.improve_epochs)
    rest = ReST(policy, bench.reward, bench.train, lambda p: step_metrics(bench, p), config,
                train_config(args, args.improve_lr), run_dir=str(folder / "rest"), selection_metric="dev_proxy")
    try:
        records = rest.fit(None, args.seed, prefix="rest", start="start", start_score=start["dev_proxy"])
        grows = [rest.run_dir.stage(f"rest/g{g}/grow") for g in range(1, args.grow_steps + 1)]
        scores = [start["dev_proxy"]] + [r["dev_proxy"] for r in records]
        best = scores.index(max(scores)) - 1  # the first best, as ReST keeps it (-1: the start)
        if best < 0:
            reload_start(policy)
        elif rest.stages.in_memory != records[best]["checkpoint"]:
            policy.load_weights(rest.run_dir.checkpoint_dir(records[best]["checkpoint"]))
    finally:
        rest.run_dir.close()
    tokens = np.cumsum([g["sampled_tokens"] for g in grows])
    steps = [{"step": "start", "sampled_tokens": 0, **{k: start[k] for k in ("dev_proxy", "proxy", "gold")}}]
    steps += [{"step": f"G{r['G']}I{r['I']}", "sampled_tokens": int(tokens[r["G"] - 1]),
               **{k: r[k] for k in ("dev_proxy", "proxy", "gold")}} for r in records]
    return {"wall_time_s": sum(g["wall_time_s"] for g in grows) + sum(r["wall_time_s"] - r["step_eval_s"] for r in records),
            "sampled_tokens": int(tokens[-1]), "grow_inputs": len(bench.train),
            "grow_reward_mean": [g["grown_reward_mean"] for g in grows], "steps_evaluated": steps,
            "chosen_step": steps[best + 1]["step"],
            "improve": [{k: r.get(k) for k in ("G", "I", "threshold", "kept", "kept_grown", "kept_mean_reward",
                                                "train_loss", "wall_time_s", "kl_to_grow_policy")} for r in records]}


def preference_pairs(bench: Bench, rest_dir: Path, limit: int | None):
    """Best against worst sample of each prompt in ReST's first Grow step; with its sampled tokens."""
    from restlm.data.preferences import PreferencePair

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
    """PPO until ReST's sampled tokens; ends at its evaluated step of highest dev proxy."""
    config = PPOConfig(learning_rate=args.ppo_lr, batch_size=args.ppo_batch, max_new_tokens=policy.max_new_tokens,
                       temperature=args.temperature, kl_coef=args.kl_coef, total_steps=args.ppo_steps,
                       max_sampled_tokens=budget, seed=args.seed, eval_every=args.eval_every, keep_best="dev_proxy")
    ppo = PPO(policy, bench.reward, bench.train, config)
    start = time.perf_counter()
    history = ppo.train(folder / "ppo_metrics.jsonl", evaluate=lambda p: step_metrics(bench, p))
    evaluated = [{**e, "step": "start" if e["step"] == 0 else f"step {e['step']}"} for e in ppo.evaluations]
    eval_time = sum(e["step_eval_s"] for e in ppo.evaluations)
    return {"wall_time_s": time.perf_counter() - start - eval_time, "sampled_tokens": ppo.sampled_tokens,
            "token_budget": budget, "steps": len(history), "first_reward": history[0]["ppo/mean_reward"],
            "last_reward": history[-1]["ppo/mean_reward"], "last_kl": history[-1]["ppo/kl"],
            "mean_step_time_s": float(np.mean([m["charts/step_time_s"] for m in history])),
            "steps_evaluated": evaluated, "chosen_step": "start" if ppo.best_step == 0 else f"step {ppo.best_step}"}
