"""Command lines of the RLHF training steps on a causal LM: SFT, DPO (both through TRL) and PPO.

  restlm sft --model smollm2 --data sft.jsonl --out runs/sft
  restlm dpo --model runs/sft --data pairs.jsonl --out runs/dpo
  restlm ppo --model runs/dpo --prompts prompts.jsonl --reward reward_model:runs/rm --out runs/ppo \\
             [--gold sentiment:runs/gold --eval-prompts dev.jsonl --eval-every 5 --keep-best]
Every prompt is written as the policy writes it when it samples (--prompt-template inside the
tokenizer's chat template, after --system-prompt), so the three steps train one format.
DIR is written whole at the end (a folder beside it, renamed into place); bad input gives one
line `restlm: error: ...` and exit code 2, and leaves no DIR.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

from restlm.cli_flags import ArgumentParser, add_dataclass_flags, config_from_args
from restlm.errors import ConfigError, RestlmError
from restlm.policies.lora import lora_of_rank

SKIPPED = ("lora", "keep_best")  # lora: --lora-rank; keep_best: --keep-best (always the proxy)


def main_sft(argv: list[str] | None = None) -> int:
    """`restlm sft`: supervised fine-tuning on {"prompt", "completion"} JSONL, loss on the completion only."""
    from restlm.sft import SftConfig

    parser = _parser("sft", main_sft.__doc__, "prompt-completion JSONL: {\"prompt\", \"completion\"} per line")
    add_dataclass_flags(parser, SftConfig, skip=SKIPPED)
    args = parser.parse_args(argv)
    return _guarded(lambda: _run_trl("sft", args, SftConfig))


def main_dpo(argv: list[str] | None = None) -> int:
    """`restlm dpo`: Direct Preference Optimisation on {"prompt", "chosen", "rejected"} JSONL."""
    from restlm.dpo import DpoConfig

    parser = _parser("dpo", main_dpo.__doc__, "preference JSONL: {\"prompt\", \"chosen\", \"rejected\"} per line")
    add_dataclass_flags(parser, DpoConfig, skip=SKIPPED)
    args = parser.parse_args(argv)
    return _guarded(lambda: _run_trl("dpo", args, DpoConfig))


def main_ppo(argv: list[str] | None = None) -> int:
    """`restlm ppo`: PPO against a reward on JSONL prompts, evaluated by greedy outputs on held-out prompts."""
    from restlm.ppo import PPOConfig

    parser = _parser("ppo", main_ppo.__doc__, None)
    parser.add_argument("--prompts", required=True, help="training prompts: JSONL, {\"prompt\"} (or \"text\") per "
                        "line, with a \"target\" where the reward needs a reference (chrf, bleu)")
    parser.add_argument("--reward", required=True, help="the proxy reward PPO maximises: chrf, bleu, "
                        "reward_model:PATH, sentiment:PATH, module:function, ... (restlm.rewards.build_reward)")
    parser.add_argument("--gold", help="a second reward, never trained on, judging the evaluated steps")
    parser.add_argument("--eval-prompts", help="held-out prompts (same format) whose greedy outputs are scored at "
                        "the start, every --eval-every steps and at the end (default: no evaluation)")
    parser.add_argument("--keep-best", action="store_true",
                        help="end at the evaluated step of highest proxy on the eval prompts (the start included)")
    add_dataclass_flags(parser, PPOConfig, skip=SKIPPED)
    args = parser.parse_args(argv)
    return _guarded(lambda: _run_ppo(args))


# ---------------------------------------------------------------- what the three share
def _parser(name: str, description: str, data_help: str | None) -> argparse.ArgumentParser:
    parser = ArgumentParser(prog=f"restlm {name}", description=description)
    parser.add_argument("--model", required=True, help="the causal LM to start from: smollm2, a HF id or a local path")
    if data_help is not None:
        parser.add_argument("--data", required=True, help=data_help)
    parser.add_argument("--out", required=True, help="folder written at the end (must not exist, or be empty)")
    parser.add_argument("--prompt-template", default="{text}", help="each prompt is this with {text} filled in")
    parser.add_argument("--system-prompt", help="a system turn before each prompt (models with a chat template)")
    parser.add_argument("--lora-rank", type=int, help="train LoRA adapters of this rank (merged when saved) "
                        "instead of every weight (default: every weight)")
    return parser


def _guarded(command) -> int:
    """Run a command; bad input becomes one line on stderr and its exit code."""
    try:
        command()
    except RestlmError as error:
        print(f"restlm: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("restlm: interrupted; nothing was written", file=sys.stderr)
        return 130
    return 0


def _load_policy(args, **settings):
    """The policy the command trains, loaded from --model; ModelLoadError if it cannot be."""
    import datasets
    from accelerate import Accelerator
    from transformers.utils import logging as hf_logging

    from restlm.policies.causal import CausalLMPolicy

    hf_logging.disable_progress_bar()  # loading bars are noise on stderr
    datasets.disable_progress_bars()  # and so are TRL's dataset preparation bars
    if "{text}" not in args.prompt_template:
        raise ConfigError("--prompt-template", f"must contain {{text}}: {args.prompt_template!r}")
    if args.lora_rank is not None and args.lora_rank < 1:
        raise ConfigError("--lora-rank", f"must be an integer >= 1, not {args.lora_rank}")
    return CausalLMPolicy.from_pretrained(args.model, Accelerator(), lora=lora_of_rank(args.lora_rank),
                                          prompt_template=args.prompt_template, system_prompt=args.system_prompt,
                                          **settings)


# ---------------------------------------------------------------- sft and dpo
def _run_trl(name: str, args, config_class) -> None:
    """Read the data, train the policy through TRL, write DIR: the model (HF format) and metrics.json."""
    from restlm.atomic_files import staged_folder, write_json
    from restlm.data.completions import read_completions
    from restlm.data.preferences import read_preferences
    from restlm.distributed import process_state
    from restlm.dpo import dpo
    from restlm.sft import sft

    cfg = config_from_args(config_class, args, lora=None)  # a policy carries its own LoRA
    rows = (read_completions if name == "sft" else read_preferences)(Path(args.data))
    is_main = process_state().is_main_process  # under accelerate launch every process trains, one publishes
    with staged_folder(args.out, is_main) as folder:
        policy = _load_policy(args)
        stats = (sft if name == "sft" else dpo)(policy, rows, cfg, out=folder)
        metrics = {"command": name, "model": args.model, "data": str(args.data), "rows": len(rows),
                   "rows_trained": stats.rows, "steps": stats.steps, "losses": stats.losses,
                   "first_loss": stats.losses[0] if stats.losses else None,
                   "last_loss": stats.losses[-1] if stats.losses else None, "wall_time_s": stats.wall_time_s,
                   "rows_per_s": stats.rows_per_s, "prompt_template": args.prompt_template,
                   "system_prompt": args.system_prompt, "lora": lora_of_rank(args.lora_rank), "config": dataclasses.asdict(cfg)}
        write_json(folder / "metrics.json", metrics)
    if is_main:
        print(json.dumps({k: v for k, v in metrics.items() if k != "losses"}, indent=2))
        print(f"{name}: model and metrics.json in {args.out}")


# ---------------------------------------------------------------- ppo
def _run_ppo(args) -> None:
    """Check every input, train, write DIR: metrics.jsonl, evaluations.jsonl, policy/ and report.md."""
    from restlm.atomic_files import staged_folder, write_atomic, write_jsonl
    from restlm.data.prompts import read_prompts
    from restlm.ppo import PPO, PPOConfig
    from restlm.ppo.report import ppo_report_markdown
    from restlm.rewards import build_reward

    cfg = config_from_args(PPOConfig, args, lora=None, keep_best="proxy" if args.keep_best else None)
    if args.keep_best and not args.eval_prompts:
        raise ConfigError("--keep-best", "needs --eval-prompts to choose a step by")
    if args.gold and not args.eval_prompts:
        raise ConfigError("--gold", "judges the evaluated steps; give --eval-prompts too")
    reward = build_reward(args.reward, key="--reward")
    gold = build_reward(args.gold, key="--gold") if args.gold else None
    prompts = read_prompts(args.prompts)
    eval_prompts = read_prompts(args.eval_prompts) if args.eval_prompts else None
    with staged_folder(args.out) as folder:
        policy = _load_policy(args, max_new_tokens=cfg.max_new_tokens)  # greedy evaluation has PPO's cap
        ppo = PPO(policy, reward, prompts, cfg)
        evaluate = greedy_evaluation(reward, gold, eval_prompts) if eval_prompts else None
        history = ppo.train(folder / "metrics.jsonl", evaluate=evaluate)
        write_jsonl(folder / "evaluations.jsonl", ppo.evaluations)
        ppo.save(folder / "policy")
        write_atomic(folder / "report.md", ppo_report_markdown(ppo.evaluations, history, _settings(args, cfg),
                                                               ppo.best_step))
    print(f"ppo: {len(history)} steps; policy/, metrics.jsonl, evaluations.jsonl and report.md in {args.out}")


def greedy_evaluation(reward, gold, examples):
    """evaluate(policy) -> {"proxy": mean reward of its greedy outputs on `examples`, "gold": the same by
    `gold` (when given)}, for `PPO.train(evaluate=...)`."""
    def evaluate(policy) -> dict:
        outputs = [texts[0] for texts in policy.sample(examples, greedy=True)]
        scores = {"proxy": float(np.mean(reward(policy, examples, outputs)))}
        if gold is not None:
            scores["gold"] = float(np.mean(gold(policy, examples, outputs)))
        return scores

    return evaluate


def _settings(args, cfg) -> str:
    """The report's one line of settings."""
    given = (f"model `{args.model}`, reward `{args.reward}`, gold `{args.gold or 'none'}`, prompts `{args.prompts}`, "
             f"eval prompts `{args.eval_prompts or 'none'}`, LoRA rank {args.lora_rank or 'none (every weight)'}")
    fields = ("total_steps", "batch_size", "samples_per_prompt", "learning_rate", "kl_coef", "temperature",
              "max_new_tokens", "eval_every", "keep_best", "seed")
    return given + ", " + ", ".join(f"{name} {getattr(cfg, name)}" for name in fields) + "."
