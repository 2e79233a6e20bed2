"""Command lines: train a Bradley-Terry reward model, train a sentiment reward (or gold) model.

  restlm reward-model --model minilm --out runs/rm_minilm [--train-pairs 1800 --eval-pairs 200]
  restlm reward-model --model minilm --ensemble 3 --out runs/rm_minilm_x3   # three seeds, one reward
  restlm sentiment-model --role reward --out runs/sentiment_reward
Each writes the model in HF format and metrics.json beside it, and prints the metrics.
`reward-model` also runs under `accelerate launch` with several processes (see README); then
only the main process writes and prints.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from restlm.cli_flags import ArgumentParser, add_dataclass_flags, config_from_args, finite_float
from restlm.errors import ConfigError, RestlmError
from restlm.runs import staged_folder

HH_PAIRS = "hh_rlhf/helpful_base_pairs.jsonl"
LORA = {"r": 8, "alpha": 16, "dropout": 0.0}


def run_reward_model(model: str, train_pairs, eval_pairs, cfg, lora: dict | None = None, max_length: int | None = None,
                     out: str | Path | None = None, batch_size_eval: int = 16) -> dict:
    """Load `model`, train it on `train_pairs`, measure pairwise accuracy on `eval_pairs`, save to `out`.

    Returns the metrics (also written to `out`/metrics.json when `out` is given). Under
    `accelerate launch` every process calls it and gets the same metrics: training is split as
    `train_reward_model` splits it, scoring as `reward_scores(across_processes=True)`, and the
    main process writes `out` while the others wait.
    """
    reward_model, metrics, _ = fit_reward_model(model, train_pairs, eval_pairs, cfg, lora, max_length, batch_size_eval)
    if out is not None:
        reward_model.save(out)
        write_metrics(out, metrics)
    return metrics


def run_reward_ensemble(model: str, members: int, train_pairs, eval_pairs, cfg, lora: dict | None = None,
                        max_length: int | None = None, out: str | Path | None = None, spread_penalty: float = 0.0,
                        calibration_pairs: int = 200, batch_size_eval: int = 16) -> dict:
    """`members` reward models of `model`, seeds cfg.seed, cfg.seed + 1, ..., as one RewardEnsemble.

    Each member is trained and measured as `run_reward_model` does; the ensemble is standardised on the
    first `calibration_pairs` training pairs' responses and measured on `eval_pairs`. Returns the
    ensemble's metrics with each member's under "members" (written to `out`/metrics.json with `out`).
    """
    from restlm.reward_models.ensemble import RewardEnsemble

    if members < 2:
        raise ValueError(f"an ensemble needs at least 2 members, not {members}")
    models, member_metrics, held_out_scores = [], [], []
    for i in range(members):
        member_cfg = dataclasses.replace(cfg, seed=cfg.seed + i)
        print(f"== reward ensemble member {i + 1}/{members} (seed {member_cfg.seed})", file=sys.stderr, flush=True)
        reward_model, metrics, scores = fit_reward_model(model, train_pairs, eval_pairs, member_cfg, lora, max_length,
                                                         batch_size_eval)
        models.append(reward_model)
        member_metrics.append(metrics)
        held_out_scores.append(scores)
    calibration = train_pairs[:calibration_pairs]
    ensemble = RewardEnsemble.calibrated(models, *both_responses(calibration), spread_penalty, batch_size_eval)
    # the members' held-out scores from their own measurement, standardised: each pair is scored once per member
    z = (np.stack(held_out_scores) - ensemble.centres[:, None]) / ensemble.scales[:, None]
    accuracy = _accuracy(ensemble.combine(z), len(eval_pairs))
    first = member_metrics[0]
    metrics = {"name": f"{first['name']} x{members}", "kind": "ensemble", "max_length": first["max_length"],
               "heldout_pairwise_accuracy": accuracy,
               "heldout_pairwise_accuracy_before_training": first["heldout_pairwise_accuracy_before_training"],
               "members_heldout_pairwise_accuracy": [m["heldout_pairwise_accuracy"] for m in member_metrics],
               "train_pairs": len(train_pairs), "eval_pairs": len(eval_pairs), "epochs": cfg.epochs,
               # its members train one after the other: the ensemble's rate is the harmonic sum of theirs
               "train_pairs_per_s": 1 / sum(1 / m["train_pairs_per_s"] for m in member_metrics),
               "eval_pairs_per_s": 1 / sum(1 / m["eval_pairs_per_s"] for m in member_metrics),
               "train_time_s": sum(m["train_time_s"] for m in member_metrics),
               "mean_train_loss": float(sum(m["mean_train_loss"] for m in member_metrics) / members),
               "trainable_parameters": sum(m["trainable_parameters"] for m in member_metrics),
               "spread_penalty": spread_penalty, "calibration_pairs": len(calibration), "lora": lora,
               "config": dataclasses.asdict(cfg), "processes": first["processes"], "members": member_metrics}
    if out is not None:
        ensemble.save(out)
        write_metrics(out, metrics)
    return metrics


def combine_reward_models(paths: Sequence[str | Path], train_pairs, eval_pairs, out: str | Path | None = None,
                          spread_penalty: float = 0.0, calibration_pairs: int = 200, batch_size_eval: int = 16) -> dict:
    """Reward models trained and saved earlier, of any backbones, as one RewardEnsemble.

    The ensemble is standardised on the first `calibration_pairs` training pairs' responses (as
    `run_reward_ensemble` does) and measured on `eval_pairs`, each member alone from the same scores.
    Returns its metrics, each member's under "members" with what the member's own metrics.json (or
    its ensemble's) recorded of its training; saved to `out` with `out`. ModelLoadError (one line)
    names a path that holds no reward model.
    """
    from restlm.reward_models.ensemble import RewardEnsemble
    from restlm.reward_models.model import RewardModel

    if len(paths) < 2:
        raise ValueError(f"an ensemble needs at least 2 members, not {len(paths)}")
    models = [RewardModel.from_pretrained(str(path)) for path in paths]
    calibration = train_pairs[:calibration_pairs]
    ensemble = RewardEnsemble.calibrated(models, *both_responses(calibration), spread_penalty, batch_size_eval)
    start = time.perf_counter()
    z = ensemble.member_scores(*both_responses(eval_pairs), batch_size_eval)
    eval_s = time.perf_counter() - start
    combined = ensemble.combine(z)
    trained = [saved_training_metrics(Path(path)) for path in paths]
    members = [{**recorded, "path": str(path), "heldout_pairwise_accuracy": _accuracy(scores, len(eval_pairs))}
               for path, recorded, scores in zip(paths, trained, z, strict=True)]
    rates = [m.get("train_pairs_per_s") for m in trained]
    metrics = {"name": " + ".join(m.get("name", Path(p).name) for m, p in zip(trained, paths, strict=True)),
               "kind": "ensemble", "max_length": models[0].max_length,
               "heldout_pairwise_accuracy": _accuracy(combined, len(eval_pairs)),
               "heldout_pairwise_accuracy_before_training": None,
               "members_heldout_pairwise_accuracy": [m["heldout_pairwise_accuracy"] for m in members],
               "train_pairs": len(train_pairs), "eval_pairs": len(eval_pairs),
               # members trained one after the other: the ensemble's rate is the harmonic sum of theirs
               "train_pairs_per_s": 1 / sum(1 / r for r in rates) if all(rates) else None,
               "eval_pairs_per_s": len(eval_pairs) / max(eval_s, 1e-9),
               "train_time_s": sum(m.get("train_time_s") or 0.0 for m in trained),
               "mean_train_loss": None,
               "trainable_parameters": sum(m.get("trainable_parameters") or 0 for m in trained),
               "spread_penalty": spread_penalty, "calibration_pairs": len(calibration), "members": members}
    if out is not None:
        ensemble.save(out)
        write_metrics(out, metrics)
    return metrics


def both_responses(pairs) -> tuple[list[str], list[str]]:
    """(prompts, responses) of every pair's chosen response, then of every pair's rejected one."""
    return [p.prompt for p in pairs] * 2, [p.chosen for p in pairs] + [p.rejected for p in pairs]


def _accuracy(scores, n: int) -> float:
    """Pairwise accuracy of scores laid out as `both_responses` lays them out: n chosen, then n rejected."""
    from restlm.reward_models.bradley_terry import accuracy_of

    return accuracy_of(scores[:n], scores[n:])


def saved_training_metrics(path: Path) -> dict:
    """What was recorded of a saved reward model's training: its metrics.json, or its entry in the
    metrics.json of the ensemble folder it is a member of; {} when neither is there."""
    own, parent = path / "metrics.json", path.parent / "metrics.json"
    if own.is_file():
        return json.loads(own.read_text())
    ensemble_file = path.parent / "ensemble.json"
    if parent.is_file() and ensemble_file.is_file():
        names = json.loads(ensemble_file.read_text()).get("members", [])
        members = json.loads(parent.read_text()).get("members", [])
        if path.name in names and names.index(path.name) < len(members):
            return members[names.index(path.name)]
    return {}


def write_metrics(out: str | Path, metrics: dict) -> None:
    from restlm.distributed import process_state
    from restlm.runs import write_json

    state = process_state()
    if state.is_main_process:
        write_json(Path(out) / "metrics.json", metrics)
    state.wait_for_everyone()


def fit_reward_model(model: str, train_pairs, eval_pairs, cfg, lora: dict | None = None, max_length: int | None = None,
                     batch_size_eval: int = 16):
    """(the trained RewardModel, its metrics, its held-out scores): accuracy on `eval_pairs` before and after,
    throughput; the scores are laid out as `both_responses(eval_pairs)` (every chosen, then every rejected)."""
    from restlm.distributed import process_state
    from restlm.reward_models.bradley_terry import (
        accuracy_of,
        pairwise_accuracy,
        reward_scores,
        train_reward_model,
    )
    from restlm.reward_models.model import RewardModel

    torch.manual_seed(cfg.seed)  # the new reward head (and LoRA's A matrices) are drawn as the model loads
    reward_model = RewardModel.from_pretrained(model, lora=lora, max_length=max_length)
    trainable = sum(p.numel() for p in reward_model.model.parameters() if p.requires_grad)
    before = pairwise_accuracy(reward_model, eval_pairs, batch_size_eval, across_processes=True)
    stats = train_reward_model(reward_model, train_pairs, cfg)
    start = time.perf_counter()
    chosen, rejected = reward_scores(reward_model, eval_pairs, batch_size_eval, across_processes=True)
    eval_s = time.perf_counter() - start
    accuracy = accuracy_of(chosen, rejected)
    metrics = {
        "name": model + ("+lora" if lora else ""), "kind": reward_model.kind, "max_length": reward_model.max_length,
        "heldout_pairwise_accuracy": accuracy, "heldout_pairwise_accuracy_before_training": before,
        "train_pairs": len(train_pairs), "eval_pairs": len(eval_pairs), "epochs": cfg.epochs,
        "train_pairs_per_s": stats.pairs_per_s, "eval_pairs_per_s": len(eval_pairs) / max(eval_s, 1e-9),
        "train_time_s": stats.wall_time_s, "mean_train_loss": stats.mean_loss,
        "final_train_loss": float(sum(stats.losses[-10:]) / len(stats.losses[-10:])),
        "trainable_parameters": trainable, "lora": lora, "config": dataclasses.asdict(cfg),
        "processes": process_state().num_processes,
    }
    return reward_model, metrics, np.concatenate([chosen, rejected])


def load_hh_split(path: str | None, train_pairs: int | None, eval_pairs: int, seed: int = 0):
    """(train, eval) preference pairs: a seeded split of the JSONL file, eval first, train capped."""
    from restlm.data.location import data_root, resolve_data_path
    from restlm.data.preferences import read_preferences
    from restlm.data.splits import train_eval_split

    given = Path(path or HH_PAIRS)
    file = given if given.is_absolute() else resolve_data_path(given, data_root())
    pairs = read_preferences(file)
    if len(pairs) <= eval_pairs:
        raise ConfigError("--eval-pairs", f"holds out {eval_pairs} of the {len(pairs)} pairs in {file}, "
                          "leaving none to train on")
    train, held_out = train_eval_split(pairs, seed=seed, eval_size=eval_pairs)
    return train[:train_pairs], held_out


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
    add_dataclass_flags(parser, RewardTrainConfig)
    args = parser.parse_args(argv)
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
        return run_probe_model(args.model, train, held_out, args.probe_layers, args.probe_folds, args.max_length, out)
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
