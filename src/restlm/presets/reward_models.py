"""The reward-model benchmark (benchmarks/reward_models.py): Bradley-Terry reward models on HH-RLHF helpful-base.

The presets (MiniLM, SmolLM2 + LoRA, MiniLM ensembles, linear probes), the run over them with
`main(args, usage_error)`, saved models combined into one ensemble, `--merge` with an earlier results
file, and the markdown of reward_models.json.
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
from collections.abc import Callable
from pathlib import Path

import torch

from restlm.atomic_files import write_atomic, write_json
from restlm.errors import RestlmError
from restlm.reward_models.bradley_terry import RewardTrainConfig
from restlm.reward_models.fitting import (
    HH_PAIRS,
    combine_reward_models,
    load_hh_split,
    run_reward_ensemble,
    run_reward_model,
)
from restlm.reward_models.probe_runs import run_probe_model

# name -> (model, LoRA options, training config, ensemble members); LoRA trains few weights, so it takes a larger step
PRESETS = {
    "minilm": ("minilm", None, RewardTrainConfig(learning_rate=3e-5, batch_size=8), 1),
    "smollm2-lora": ("smollm2", {"r": 8, "alpha": 16, "dropout": 0.0},
                     RewardTrainConfig(learning_rate=2e-4, batch_size=8), 1),
    # MiniLM seeds 0, 1 (, 2), their standardised rewards averaged (restlm.reward_models.ensemble)
    "minilm-x2": ("minilm", None, RewardTrainConfig(learning_rate=3e-5, batch_size=8), 2),
    "minilm-x3": ("minilm", None, RewardTrainConfig(learning_rate=3e-5, batch_size=8), 3),
}
# name -> backbone of a linear probe (frozen backbone, head by logistic regression; restlm.reward_models.probe)
PROBES = {"minilm-probe": "minilm", "smollm2-probe": "smollm2"}
NESTED_FOLDS = 5  # the probes' second estimate: cross-validation over all 2000 pairs, the choice redone per fold


def markdown(summary: dict) -> str:
    """A results summary (reward_models.json) -> reward_models.md."""
    lines = ["# Reward models on HH-RLHF helpful-base (Bradley-Terry)", "",
             f"Machine: {summary['machine']}  ", f"Command: `{summary['command']}`  ",
             (f"Data: {summary['data']}; {summary['eval_pairs']} held-out pairs (seed {summary['split_seed']}), "
              f"{summary['train_pairs']} training pairs; max length {summary['max_length']} tokens per "
              "(prompt, response), the prompt cut from the left."), "",
             ("| model | train pairs | held-out pairwise accuracy | before training | train pairs/s | eval pairs/s | "
              "train time (s) | mean train loss | trainable parameters |"),
             "|---|---|---|---|---|---|---|---|---|"]
    for m in summary["models"]:
        lines.append(f"| {m['name']} | {m.get('train_pairs', summary['train_pairs'])} | {m['heldout_pairwise_accuracy']:.4f} | "
                     f"{figure(m['heldout_pairwise_accuracy_before_training'], '.4f')} | "
                     f"{figure(m['train_pairs_per_s'], '.2f')} | {m['eval_pairs_per_s']:.2f} | {m['train_time_s']:.0f} | "
                     f"{figure(m['mean_train_loss'], '.4f')} | {m['trainable_parameters']:,} |")
    n = summary["eval_pairs"]
    lines += ["", (f"With {n} held-out pairs, one standard error of an accuracy near 0.6 is about "
                   f"{(0.6 * 0.4 / max(n, 1)) ** 0.5:.3f}. A pair counts one half when both rewards tie."),
              *[f"{m['name']}: an ensemble whose members scored "
                + ", ".join(f"{a:.4f}" for a in m["members_heldout_pairwise_accuracy"])
                + f" alone ({ensemble_members(m)}; standardised on {m['calibration_pairs']} training pairs)."
                for m in summary["models"] if m.get("kind") == "ensemble"],
              *[probe_note(m) for m in summary["models"] if "probe" in m],
              *[(f"{m['name']}: nested {m['nested_cv']['outer_folds']}-fold cross-validation of the ensemble over all "
                 f"{m['nested_cv']['pairs']} pairs, each member chosen and fitted inside each fold: "
                 f"**{m['nested_cv']['accuracy']:.4f}** (standard error {m['nested_cv']['standard_error']:.3f}; "
                 "`benchmarks/probe_ensemble_cv.py`).") for m in summary["models"] if "nested_cv" in m],
              *sorted({f"Command of {m['name']}: `{m['command']}`" for m in summary["models"] if m.get("command")}),
              "Peak resident memory of the process after each model: "
              + ", ".join(f"{m['name']} {m['peak_memory_mb']:.0f} MB" for m in summary["models"]) + "."]
    return "\n".join(lines) + "\n"


def probe_note(model: dict) -> str:
    """How a probe was chosen, and its nested cross-validation estimate over all the pairs."""
    probe = model["probe"]
    by_layer = ", ".join(f"{k}: {v:.3f}" for k, v in probe["cv_accuracy_by_layer"].items())
    note = (f"{model['name']}: a linear probe on the first {probe['layer']} of {probe['layers_of_backbone']} layers "
            f"(C {probe['c']:.3g}), chosen by {probe['folds']}-fold cross-validation on the training pairs "
            f"(accuracy by layer: {by_layer}).")
    if nested := probe.get("nested_cv"):
        note += (f" Nested {nested['outer_folds']}-fold cross-validation over all {nested['pairs']} pairs, the choice "
                 f"redone in each fold: **{nested['accuracy']:.4f}** (standard error {nested['standard_error']:.3f}; "
                 f"layers chosen {nested['layers_chosen']}).")
    return note


def figure(value, spec: str) -> str:
    """`value` formatted by `spec`, or a dash when there is none."""
    return "–" if value is None else format(value, spec)


def ensemble_members(model: dict) -> str:
    """Seeds of one backbone's ensemble; the saved folders of a combined one."""
    if "config" in model:
        return f"seeds {model['config']['seed']} on"
    return "members " + ", ".join(f"`{m['path']}`" for m in model["members"])


def combine_spec(spec: str) -> tuple[str, list[str]]:
    """'NAME=PATH,PATH[,...]' -> (NAME, paths); SystemExit with the spec when malformed."""
    name, _, paths = spec.partition("=")
    folders = [p.strip() for p in paths.split(",") if p.strip()]
    if not name.strip() or len(folders) < 2:
        raise SystemExit(f"--combine wants NAME=PATH,PATH[,...] (two saved reward models at least); got {spec!r}")
    return name.strip(), folders


def kept_models(path: Path, summary: dict, replaced: list[str]) -> list[dict]:
    """The models of an earlier results file that this run does not retrain; each keeps its own command."""
    earlier = json.loads(path.read_text())
    for key in ("data", "split_seed", "train_pairs", "eval_pairs", "max_length"):
        if earlier.get(key) != summary[key]:
            raise SystemExit(f"{path}: {key} is {earlier.get(key)!r}, this run's is {summary[key]!r}; cannot --merge")
    return [{"command": earlier["command"], "machine": earlier["machine"], **m}
            for m in earlier["models"] if m["name"] not in replaced]


def main(args: argparse.Namespace, usage_error: Callable[[str], None]) -> None:
    """Train and measure args.models and the --combine ensembles; rewrite OUT/reward_models.{json,md} after each.

    `usage_error` reports a bad argument (the parser's `error`: usage and exit 2).
    """
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    combined = [combine_spec(spec) for spec in args.combine]
    if unknown := [n for n in names if n not in PRESETS and n not in PROBES]:
        usage_error(f"unknown model(s) {unknown}; choose from {', '.join([*PRESETS, *PROBES])}")

    train, held_out = load_hh_split(args.data, args.train_pairs, args.eval_pairs, seed=0)
    summary = {"machine": f"{platform.node()} {platform.machine()}, {torch.get_num_threads()} threads, "
                          f"torch {torch.__version__}",
               "command": " ".join(["python", *sys.argv]), "data": args.data or HH_PAIRS, "split_seed": 0,
               "train_pairs": len(train), "eval_pairs": len(held_out), "max_length": args.max_length, "models": []}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.merge and (out / "reward_models.json").exists():
        summary["models"] = kept_models(out / "reward_models.json", summary, names + [n for n, _ in combined])
    caps = {}
    for spec in args.max_train_pairs:
        name, _, count = spec.partition("=")
        if name not in PRESETS or not count.isdigit():
            usage_error(f"--max-train-pairs wants MODEL=N with MODEL one of {', '.join(PRESETS)}; got {spec!r}")
        caps[name] = int(count)

    def record(metrics: dict) -> None:
        metrics.update(command=summary["command"], machine=summary["machine"],
                       peak_memory_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        summary["models"].append(metrics)
        print(f"   held-out pairwise accuracy {metrics['heldout_pairwise_accuracy']:.4f}", flush=True)
        write_json(out / "reward_models.json", summary)
        write_atomic(out / "reward_models.md", markdown(summary))

    for name in names:
        if name in PROBES:
            print(f"== {name}: {len(train)} training pairs, {len(held_out)} held out", flush=True)
            save_to = Path(args.save_dir) / name if args.save_dir else None
            # the backbone's features are kept beside the model: a rerun (other folds, a crash) refits in minutes
            cache = Path(args.save_dir) / f"{name}.features.npz" if args.save_dir else None
            record({**run_probe_model(PROBES[name], train, held_out, max_length=args.max_length, out=save_to,
                                      nested_folds=NESTED_FOLDS, features_cache=cache), "name": name})
            continue
        model, lora, cfg, members = PRESETS[name]
        cfg = RewardTrainConfig(**{**cfg.__dict__, "epochs": args.epochs})
        pairs = train[: caps.get(name, len(train))]
        print(f"== {name}: {len(pairs)} training pairs, {len(held_out)} held out", flush=True)
        save_to = Path(args.save_dir) / name if args.save_dir else None
        if members > 1:
            metrics = run_reward_ensemble(model, members, pairs, held_out, cfg, lora, args.max_length, save_to)
        else:
            metrics = run_reward_model(model, pairs, held_out, cfg, lora, args.max_length, save_to)
        record({**metrics, "name": name, "train_pairs": len(pairs)})
    for name, paths in combined:
        print(f"== {name}: {len(paths)} saved reward models as one ensemble, {len(held_out)} held out", flush=True)
        save_to = Path(args.save_dir) / name if args.save_dir else None
        try:
            record({**combine_reward_models(paths, train, held_out, save_to), "name": name})
        except RestlmError as error:
            raise SystemExit(f"--combine {name}: {error}") from None
