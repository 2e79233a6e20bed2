"""The probe-features benchmark (benchmarks/reward_model_features.py): which frozen features of MiniLM and SmolLM2
tell HH-RLHF's chosen response from the rejected one, each probe procedure measured by nested cross-validation
over all 2000 pairs (the feature set, the layer and the L2 strength chosen inside every outer fold).

Each backbone runs forward once over the 4000 (prompt, response) rows at `MAX_LENGTH` tokens (the probes of
reward_models.md read 256, which cut 29% of the pairs); its features are cached in the run folder.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

MAX_LENGTH = 512  # 96% of the pairs fit whole with SmolLM2's tokenizer
OUTER_FOLDS, INNER_FOLDS = 5, 5
# backbone -> (depths whose features are kept, as fractions of its layers: MiniLM 3 and 6 of 6, SmolLM2 12, 21
# and 30 of 30, where its probe CV is flat; pools; scalars)
BACKBONES = {"minilm": ((0.5, 1.0), ("last", "mean"), ("length",)),
             "smollm2": ((0.4, 0.7, 1.0), ("last", "mean"), ("logp", "length"))}
# procedure -> its members, each (backbone, pools, scalars): one member is one probe; several, an ensemble of
# probes combined as a saved ensemble is (each member's rewards standardised, then averaged)
PROCEDURES = {
    "length": [("smollm2", (), ("length",))],
    "smollm2 logp+length": [("smollm2", (), ("logp", "length"))],
    "minilm last": [("minilm", ("last",), ())],
    "minilm mean": [("minilm", ("mean",), ())],
    "minilm last+mean+length": [("minilm", ("last", "mean"), ("length",))],
    "smollm2 last": [("smollm2", ("last",), ())],
    "smollm2 mean": [("smollm2", ("mean",), ())],
    "smollm2 last+mean+logp+length": [("smollm2", ("last", "mean"), ("logp", "length"))],
    "both ensemble": [("minilm", ("last", "mean"), ("length",)), ("smollm2", ("last", "mean"), ("logp", "length"))],
}
HEADLINE = "both ensemble"  # fixed before any result (NOTES, session 18); the others are its ablations


def run(runs: Path, data: str | None, procedures: list[str], command: str, models: dict | None = None) -> dict:
    """Features of each backbone the procedures need (cached in `runs`), then each procedure's nested CV.

    models: a backbone's model when not its name (tests: tiny random ones)."""
    from restlm.machine import machine
    from restlm.reward_models.fitting import HH_PAIRS, both_responses, load_hh_pairs
    from restlm.reward_models.model import RewardModel
    from restlm.reward_models.probe import layer_count
    from restlm.reward_models.probe_features import probe_candidates, probe_features
    from restlm.reward_models.probe_runs import cached_arrays, features_key, nested_cv

    pairs, _ = load_hh_pairs(data)
    rows, n = both_responses(pairs), len(pairs)
    features, layers, seconds = {}, {}, {}
    for name in sorted({m[0] for p in procedures for m in PROCEDURES[p]}):
        depths, pools, scalars = BACKBONES[name]
        source = (models or {}).get(name, name)
        model = RewardModel.from_pretrained(source, max_length=MAX_LENGTH)
        count = layer_count(model)
        layers[name] = sorted({max(1, round(d * count)) for d in depths})
        key = features_key(rows, source, model.max_length, layers[name], pools, scalars)
        features[name], seconds[name] = cached_arrays(
            runs / f"{name}_{model.max_length}.features.npz", key,
            lambda model=model, name=name, pools=pools, scalars=scalars:
                probe_features(model, *rows, layers[name], pools, scalars))
        del model
        print(f"{name}: features of {len(rows[0])} rows in {seconds[name]:.0f} s", flush=True)
    results = []
    for procedure in procedures:
        members = []
        for name, pools, scalars in PROCEDURES[procedure]:
            sets = probe_candidates(features[name], layers[name], pools, scalars)
            members.append(({k: v[:n] for k, v in sets.items()}, {k: v[n:] for k, v in sets.items()}))
        start = time.perf_counter()
        cv = nested_cv(members, OUTER_FOLDS, INNER_FOLDS)
        results.append({"procedure": procedure,
                        "members": [[b, "+".join([*pools, *scalars])] for b, pools, scalars in PROCEDURES[procedure]],
                        **cv, "fit_seconds": time.perf_counter() - start})
        print(f"{procedure}: {cv['accuracy']:.4f} (SE {cv['standard_error']:.3f})", flush=True)
    return {"machine": machine(), "command": command, "data": data or HH_PAIRS, "pairs": n, "max_length": MAX_LENGTH,
            "outer_folds": OUTER_FOLDS, "inner_folds": INNER_FOLDS, "headline": HEADLINE,
            "layers": layers, "feature_seconds": seconds, "procedures": results}


def markdown(summary: dict) -> str:
    """benchmarks/results/reward_model_features.json -> .md"""
    lines = ["# Linear-probe reward models on HH-RLHF helpful-base: which frozen features", "",
             f"Machine: {summary['machine']}  ", f"Command: `{summary['command']}`  ",
             (f"Data: {summary['data']}, all {summary['pairs']} pairs; {summary['max_length']} tokens per (prompt, "
              f"response). Nested {summary['outer_folds']}-fold cross-validation: in each outer fold the feature "
              f"set, layer and L2 strength are chosen by {summary['inner_folds']}-fold cross-validation on the "
              "other folds alone. The headline procedure was fixed before any result; picking the best row of "
              "this table would be optimistic."), "",
             "| procedure | members (backbone: features) | nested-CV pairwise accuracy | SE | chosen per fold | fit time (s) |",
             "|---|---|---|---|---|---|"]
    for r in summary["procedures"]:
        chosen = r["layers_chosen"]
        mark = "**" if r["procedure"] == summary["headline"] else ""
        lines.append(f"| {mark}{r['procedure']}{mark} | {'; '.join(f'{b}: {f}' for b, f in r['members'])} | "
                     f"{mark}{r['accuracy']:.4f}{mark} | {r['standard_error']:.3f} | {json.dumps(chosen)} | "
                     f"{r['fit_seconds']:.0f} |")
    lines += ["", "Features (restlm.reward_models.probe_features): `last@L` what the model's own head reads at depth L; "
              "`mean@L` the mean state over the response's tokens; `logp` the response's summed and mean token "
              "log-probability under SmolLM2-Instruct's own language model; `length` log(1 + response tokens). "
              "Backbone forward passes: " + ", ".join(f"{k} {v:.0f} s" for k, v in summary["feature_seconds"].items())
              + "."]
    return "\n".join(lines) + "\n"
