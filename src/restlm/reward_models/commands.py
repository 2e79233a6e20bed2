"""Command lines: train a Bradley-Terry reward model, train a sentiment reward (or gold) model
(the argument parsing; what they run is in fitting.py, probe_runs.py and sentiment.py).

  restlm reward-model --model minilm --out runs/rm_minilm [--train-pairs 1800 --eval-pairs 200]
  restlm reward-model --model minilm --ensemble 3 --out runs/rm_minilm_x3   # three seeds, one reward
  restlm sentiment-model --role reward --out runs/sentiment_reward
Each writes the model in HF format and metrics.json beside it, and prints the metrics.
`reward-model` also runs under `accelerate launch` with several processes (see README); then
only the main process writes and prints.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from restlm.atomic_files import staged_folder
from restlm.cli_flags import (
    ArgumentParser,
    add_dataclass_flags,
    config_from_args,
    finite_float,
)
from restlm.errors import ConfigError, RestlmError
from restlm.reward_models.fitting import (
    HH_PAIRS,
    LORA,
    load_hh_split,
    run_reward_ensemble,
    run_reward_model,
)


def main_reward_model(argv: list[str] | None = None) -> int:
    """`restlm reward-model ...`: train, evaluate and save one Bradley-Terry reward model."""
    from restlm.distributed import process_state
    from restlm.reward_models.bradley_terry import RewardTrainConfig

    parser = ArgumentParser(prog="restlm reward-model", description=main_reward_model.__doc__)
    parser.add_argument("--model", default="minilm", help="minilm, smollm2, a HF id or a local path")
    parser.add_argument("--data", help=f"preference JSONL (default: {HH_PAIRS} under the data root)")
    parser.add_argument("--out", required=True, help="folder the reward model is saved to")
    parser.add_argument("--train-pairs", type=int, help="training pairs used (default: all not held out)")
    parser.add_argument("--eval-pairs", type=int, default=200, help="held-out pairs")
    parser.add_argument("--lora", action="store_true", help="LoRA adapters (r=8) instead of full fine-tuning")
    parser.add_argument("--max-length", type=int, help="tokens per (prompt, response) (default 256)")
    parser.add_argument("--ensemble", type=int, default=1, metavar="N",
                        help="train N models (seeds SEED..SEED+N-1) and save them as one reward ensemble")
    parser.add_argument("--spread-penalty", type=finite_float, default=0.0,
                        help="ensemble reward = mean - this * std of the members' standardised rewards")
    parser.add_argument("--probe", action="store_true",
                        help="a linear probe: the backbone frozen and cut, the head fitted by logistic regression")
    parser.add_argument("--probe-layers", type=_layer_list, metavar="L,L,...",
                        help="backbone depths the probe may read (default: about 8 spread over the backbone)")
    parser.add_argument("--probe-folds", type=int, default=5, help="cross-validation folds choosing the probe")
    parser.add_argument("--probe-features", type=_feature_list, default=("last",), metavar="F,F,...",
                        help="what the probe reads: last (the head's input), mean (the response's mean state), "
                             "logp (its log-probability under a causal backbone), length; default last")
    add_dataclass_flags(parser, RewardTrainConfig)
    args = parser.parse_args(argv)
    if args.probe_features != ("last",) and not args.probe:
        parser.error("--probe-features: only with --probe")
    if args.probe_layers and not {"last", "mean"} & set(args.probe_features):
        parser.error("--probe-layers: a probe of scalars alone (no last or mean in --probe-features) reads no layer")
    if args.probe and (args.lora or args.ensemble > 1):
        parser.error("--probe fits a head on a frozen backbone: it takes neither --lora nor --ensemble")
    try:
        _check_counts(args)
        cfg = config_from_args(RewardTrainConfig, args)
        train, held_out = load_hh_split(args.data, args.train_pairs, args.eval_pairs, args.seed)
        lora = LORA if args.lora else None
        # written beside --out and renamed into place at the end: a folder with anything in it is refused
        with staged_folder(args.out, process_state().is_main_process) as out:
            if args.probe:
                metrics = _run_probe_command(args, train, held_out, out)
            elif args.ensemble > 1:
                metrics = run_reward_ensemble(args.model, args.ensemble, train, held_out, cfg, lora, args.max_length,
                                              out, args.spread_penalty)
            else:
                metrics = run_reward_model(args.model, train, held_out, cfg, lora, args.max_length, out)
    except RestlmError as error:
        print(f"restlm: error: {error}", file=sys.stderr)
        return error.exit_code
    if process_state().is_main_process:
        print(json.dumps(metrics, indent=2))
    return 0


def _check_counts(args) -> None:
    """ConfigError naming the first count flag out of its range (before any file is read)."""
    least = {"--ensemble": (args.ensemble, 1), "--probe-folds": (args.probe_folds, 2),
             "--eval-pairs": (args.eval_pairs, 1), "--train-pairs": (args.train_pairs, 1),
             "--max-length": (args.max_length, 8)}
    for flag, (value, low) in least.items():
        if value is not None and value < low:
            raise ConfigError(flag, f"must be at least {low}, not {value}")


def _layer_list(text: str) -> list[int]:
    try:
        layers = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"wants comma-separated layer counts, got {text!r}") from None
    if not layers:
        raise argparse.ArgumentTypeError("wants at least one layer count")
    return layers


def _feature_list(text: str) -> tuple[str, ...]:
    from restlm.reward_models.probe_features import POOLS, SCALARS

    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names or any(n not in (*POOLS, *SCALARS) for n in names) or len(set(names)) < len(names):
        raise argparse.ArgumentTypeError(f"wants distinct names among {', '.join((*POOLS, *SCALARS))}, got {text!r}")
    return tuple(names)


def _run_probe_command(args, train, held_out, out: Path) -> dict:
    """run_probe_model for `restlm reward-model --probe`; a bad layer count is a ConfigError on its flag."""
    from restlm.errors import ConfigError
    from restlm.reward_models.model import RewardModel
    from restlm.reward_models.probe import layer_count
    from restlm.reward_models.probe_runs import run_probe_model

    if args.probe_layers:
        count = layer_count(RewardModel.from_pretrained(args.model, max_length=args.max_length))
        if bad := [layer for layer in args.probe_layers if not 1 <= layer <= count]:
            raise ConfigError("--probe-layers", f"{bad} outside 1..{count}, the depth of {args.model}")
    try:
        from restlm.reward_models.probe_features import POOLS

        pools = tuple(f for f in args.probe_features if f in POOLS)
        scalars = tuple(f for f in args.probe_features if f not in POOLS)
        return run_probe_model(args.model, train, held_out, args.probe_layers, args.probe_folds, args.max_length, out,
                               pools=pools, scalars=scalars)
    except ValueError as error:  # too few pairs for the folds, a backbone a probe cannot read
        raise ConfigError("--probe", str(error)) from None


def main_sentiment_model(argv: list[str] | None = None) -> int:
    """`restlm sentiment-model --role reward|gold --out DIR`: train one sentiment classifier."""
    from restlm.reward_models.sentiment import (
        ROLES,
        SentimentTrainConfig,
        train_sentiment_role,
    )

    parser = ArgumentParser(prog="restlm sentiment-model", description=main_sentiment_model.__doc__)
    parser.add_argument("--role", choices=ROLES, required=True, help="which half of the sentences to train on")
    parser.add_argument("--out", required=True, help="folder the classifier is saved to")
    parser.add_argument("--limit", type=int, help="training sentences used (default: the whole half)")
    add_dataclass_flags(parser, SentimentTrainConfig)
    args = parser.parse_args(argv)
    try:
        cfg = config_from_args(SentimentTrainConfig, args)
        if args.limit is not None and args.limit < 2:
            raise ConfigError("--limit", f"must be at least 2 sentences, not {args.limit}")
        with staged_folder(args.out) as out:  # refused when not empty; renamed into place at the end
            metrics = train_sentiment_role(args.role, out, cfg, limit=args.limit)
    except RestlmError as error:
        print(f"restlm: error: {error}", file=sys.stderr)
        return error.exit_code
    print(json.dumps(metrics, indent=2))
    return 0


if __name__ == "__main__":
    commands = {"reward-model": main_reward_model, "sentiment-model": main_sentiment_model}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit(f"usage: python -m restlm.reward_models.commands {{{','.join(commands)}}} ...")
    sys.exit(commands[sys.argv[1]](sys.argv[2:]))
