"""Training and measuring Bradley-Terry reward models (one, an ensemble, a combination), the library
side of `restlm reward-model`: each returns its metrics and writes the model and metrics.json.
"""
from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from restlm.errors import ConfigError

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
    from restlm.atomic_files import write_json
    from restlm.distributed import process_state

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


def load_hh_pairs(path: str | None):
    """(every preference pair of the JSONL file in file order, the file): HH-RLHF helpful-base by default; a
    relative path is looked up under the data folder."""
    from restlm.data.location import data_root, resolve_data_path
    from restlm.data.preferences import read_preferences

    given = Path(path or HH_PAIRS)
    file = given if given.is_absolute() else resolve_data_path(given, data_root())
    return read_preferences(file), file


def load_hh_split(path: str | None, train_pairs: int | None, eval_pairs: int, seed: int = 0):
    """(train, eval) preference pairs: a seeded split of the JSONL file, eval first, train capped."""
    from restlm.data.splits import train_eval_split

    pairs, file = load_hh_pairs(path)
    if len(pairs) <= eval_pairs:
        raise ConfigError("--eval-pairs", f"holds out {eval_pairs} of the {len(pairs)} pairs in {file}, "
                          "leaving none to train on")
    train, held_out = train_eval_split(pairs, seed=seed, eval_size=eval_pairs)
    return train[:train_pairs], held_out
