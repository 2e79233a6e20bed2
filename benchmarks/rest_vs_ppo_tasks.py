"""The two tasks of benchmarks/rest_vs_ppo.py, as every method sees them: prompts, proxy, gold."""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from restlm.config import TranslationConfig
from restlm.data.examples import Example
from restlm.data.parallel import load_multi30k
from restlm.data.sentiment import read_sentiment_sources
from restlm.reward_models.sentiment import sentiment_splits, train_sentiment_role
from restlm.rewards import Reward, build_reward
from restlm.rewards.generation import corpus_bleu, corpus_chrf

TASKS = ("sentiment", "translation")
MAX_NEW_TOKENS = {"sentiment": 24, "translation": 32}
SENTIMENT_PROMPT = "Continue this movie review: {text}"
SENTIMENT_SYSTEM = "You write movie reviews. Reply with the rest of the review only."


@dataclass
class Bench:
    """One task as every method sees it."""

    name: str
    train: list[Example]  # the prompts ReST grows on, DPO's pairs come from and PPO trains on
    dev: list[Example]  # held-out prompts whose proxy reward selects each method's step
    heldout: list[Example]  # the evaluation prompts, the same for every method
    reward: Reward  # the proxy, in [0, 1]
    gold: Callable[[list[Example], list[str]], dict]  # {"gold": .., extras} of outputs for the held-out prompts
    # outputs for the held-out prompts -> gold of any resample of them (row indices), for paired bootstraps
    gold_of_rows: Callable[[list[Example], list[str]], Callable[[np.ndarray], float]]
    policy_args: dict  # prompt template, system prompt, max_new_tokens
    sft: list[Example] = field(default_factory=list)  # SFT pairs; none: the instruct model is the start
    original_data: str = "none"  # ReST's original-data mix: 'filtered' where the prompts have references
    info: dict = field(default_factory=dict)


def sentiment_bench(args, run_dir: Path) -> Bench:
    """Continue the first words of an IMDB sentence into a positive review; two MiniLM judges."""
    paths = {role: Path(getattr(args, f"{role}_model") or run_dir / f"sentiment_{role}").resolve() for role in ("reward", "gold")}
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

    # held out: openings of sentences neither classifier saw, then of the gold's (never the proxy's): both
    # classifiers score the continuation alone, so a prompt the gold trained on does not leak into its score
    unseen, gold_seen = openings("eval"), openings("gold")
    heldout = (unseen + gold_seen)[: args.eval_prompts]
    if len(heldout) < args.eval_prompts:
        raise SystemExit(f"only {len(heldout)} IMDB openings the proxy never saw for --eval-prompts {args.eval_prompts}")
    pool = unseen[args.eval_prompts :] + openings("reward")  # then sentences the proxy (not the gold) saw
    gold_reward = build_reward(f"sentiment:{paths['gold']}", normalise=True)

    def gold(examples, outputs):
        p = gold_reward(None, examples, outputs)
        return {"gold": float(p.mean()), "gold_positive_rate": float((p > 0.5).mean())}

    def gold_of_rows(examples, outputs):
        p = np.asarray(gold_reward(None, examples, outputs))  # scored once; a resample averages its rows
        return lambda rows: float(p[rows].mean())

    info["heldout_prompts_unseen_by_both_models"] = min(len(unseen), args.eval_prompts)
    info["train_prompts_unseen_by_both_models"] = max(0, min(args.prompts, len(unseen) - args.eval_prompts - args.dev_prompts))
    dev, train = pool[: args.dev_prompts], pool[args.dev_prompts : args.dev_prompts + args.prompts]
    return Bench("sentiment", train, dev, heldout,
                 build_reward(f"sentiment:{paths['reward']}", normalise=True), gold, gold_of_rows,
                 {"prompt_template": SENTIMENT_PROMPT, "system_prompt": SENTIMENT_SYSTEM,
                  "max_new_tokens": args.max_new_tokens or MAX_NEW_TOKENS["sentiment"]}, info=info)


def translation_bench(args, run_dir: Path) -> Bench:
    """Multi30k De->En from an SFT start; proxy sentence chrF, gold corpus BLEU."""
    train = load_multi30k(None, "train", limit=max(args.sft_examples, args.prompts))
    val = load_multi30k(None, "val", limit=args.eval_prompts + args.dev_prompts)
    translation = TranslationConfig()

    def gold(examples, outputs):
        refs = [e.target for e in examples]
        return {"gold": corpus_bleu(outputs, refs), "gold_chrf": corpus_chrf(outputs, refs)}

    def gold_of_rows(examples, outputs):
        refs = [e.target for e in examples]
        return lambda rows: corpus_bleu([outputs[i] for i in rows], [refs[i] for i in rows])

    return Bench("translation", train[: args.prompts], val[args.eval_prompts :], val[: args.eval_prompts],
                 build_reward("chrf", normalise=True), gold, gold_of_rows,
                 {"prompt_template": translation.prompt, "system_prompt": translation.system_prompt,
                  "max_new_tokens": args.max_new_tokens or MAX_NEW_TOKENS["translation"]},
                 sft=train[: args.sft_examples], original_data="filtered")


BENCHES = {"sentiment": sentiment_bench, "translation": translation_bench}
