"""Linear-probe reward models as a run: fit, measure, save; their features cached; nested cross-validation.

  run_probe_model   a probe of one backbone (restlm.reward_models.probe), measured on held-out pairs
  nested_cv         the accuracy of the whole choice-and-fit procedure of one probe or an ensemble of probes
"""
from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from restlm.reward_models.fitting import both_responses, write_metrics


def run_probe_model(model: str, train_pairs, eval_pairs, layers: Sequence[int] | None = None, folds: int = 5,
                    max_length: int | None = None, out: str | Path | None = None, nested_folds: int = 0,
                    batch_size_eval: int = 16, features_cache: str | Path | None = None,
                    pools: Sequence[str] = ("last",), scalars: Sequence[str] = ()) -> dict:
    """A linear-probe reward model of `model` (restlm.reward_models.probe), its metrics, saved to `out`.

    The layer and L2 strength are chosen by `folds`-fold cross-validation on `train_pairs`; the
    held-out accuracy is measured by the saved model's own `score`. nested_folds > 0 also
    estimates the accuracy of the whole procedure (choice included) by cross-validation over train
    and held-out pairs together, the choice redone inside each outer fold: a figure with a smaller
    standard error than one held-out set's, from the features already computed.
    pools, scalars: what the probe reads (probe_features). The default, the last state alone, is an HF
    classifier cut to the chosen layer (probe.apply_probe); anything more, a FeatureProbe (feature_probe.py).
    features_cache: an .npz file of the pairs' features, read when it holds these pairs and features
    (its time is the one recorded when it was made), written otherwise.
    """
    from restlm.reward_models.bradley_terry import pairwise_accuracy
    from restlm.reward_models.feature_probe import FeatureProbe
    from restlm.errors import ModelLoadError
    from restlm.reward_models.model import RewardModel
    from restlm.reward_models.probe import apply_probe, default_layers, fit_probe, layer_count
    from restlm.reward_models.probe_features import probe_features

    pools, scalars = tuple(pools), tuple(scalars)
    reward_model = RewardModel.from_pretrained(model, max_length=max_length)
    if isinstance(reward_model, FeatureProbe):
        raise ModelLoadError(model, "already a fitted feature probe: fit a probe on its backbone instead")
    count = layer_count(reward_model)
    if layers and not pools:
        raise ValueError("probe layers mean nothing to a probe of scalars alone (no last or mean)")
    layers = sorted(set(layers or default_layers(count))) if pools else [count]
    pairs = list(train_pairs) + list(eval_pairs)
    rows = both_responses(pairs)
    features, features_s = cached_arrays(
        features_cache, features_key(rows, model, reward_model.max_length, layers, pools, scalars),
        lambda: probe_features(reward_model, *rows, layers, pools, scalars, batch_size_eval))
    head_only = pools == ("last",) and not scalars
    sets, layer_of = _feature_sets(features, layers, pools, scalars, head_only)
    n, n_train = len(pairs), len(train_pairs)
    chosen = {k: v[:n] for k, v in sets.items()}
    rejected = {k: v[n:] for k, v in sets.items()}
    start = time.perf_counter()
    fit = fit_probe({k: v[:n_train] for k, v in chosen.items()}, {k: v[:n_train] for k, v in rejected.items()}, folds)
    fit_s = time.perf_counter() - start
    margins = (chosen[fit.layer][n_train:] - rejected[fit.layer][n_train:]) @ fit.weights
    if head_only:
        apply_probe(reward_model, fit)
    else:
        reward_model = FeatureProbe(reward_model.model, reward_model.tokenizer, reward_model.kind,
                                    reward_model.max_length,
                                    {"feature_set": fit.layer, "layer": layer_of[fit.layer], "pools": list(pools),
                                     "scalars": list(scalars), "weights": fit.weights.tolist()})
    start = time.perf_counter()
    accuracy = pairwise_accuracy(reward_model, eval_pairs, batch_size_eval)
    eval_s = time.perf_counter() - start
    metrics = {"name": f"{model} probe", "kind": reward_model.kind, "max_length": reward_model.max_length,
               "heldout_pairwise_accuracy": accuracy,
               # the same margins from the cached features: a check that the saved model reads them
               "heldout_pairwise_accuracy_from_features": float(np.mean((margins > 0) + 0.5 * (margins == 0))),
               "heldout_pairwise_accuracy_before_training": None,
               "train_pairs": n_train, "eval_pairs": len(eval_pairs), "epochs": None,
               # a probe's training is the backbone's forward pass over the training pairs plus the fits
               "train_pairs_per_s": n_train / (features_s * n_train / n + fit_s),
               "eval_pairs_per_s": len(eval_pairs) / max(eval_s, 1e-9),
               "train_time_s": features_s * n_train / n + fit_s, "mean_train_loss": None,
               "trainable_parameters": int(fit.weights.size),
               "probe": {"layer": layer_of[fit.layer], "features": fit.layer if not head_only else "last",
                         "layers_of_backbone": count, "c": fit.c, "folds": folds, "cv_accuracy": fit.cv_accuracy,
                         "cv_accuracy_by_layer": {str(k): v for k, v in fit.cv_accuracy_by_layer.items()}},
               "processes": 1}
    if nested_folds:
        metrics["probe"]["nested_cv"] = nested_cv([(chosen, rejected)], nested_folds, folds)
    if out is not None:
        reward_model.save(out)
        write_metrics(out, metrics)
    return metrics


def _feature_sets(features: dict, layers, pools, scalars, head_only: bool) -> tuple[dict, dict]:
    """(the sets fit_probe chooses among, by name; each name's layer). A probe of the head's input alone names
    its sets by layer, as apply_probe reads them; any other, as probe_candidates does (`last+mean@12+logp`)."""
    from restlm.reward_models.probe_features import probe_candidates

    if head_only:
        return {layer: features[f"last@{layer}"] for layer in layers}, {layer: layer for layer in layers}
    sets, layer_of = {}, {}
    for layer in layers:
        (name, rows), = probe_candidates(features, [layer], pools, scalars).items()
        sets[name], layer_of[name] = rows, layer
    return sets, layer_of


def features_key(rows, source: str, max_length: int, layers, pools, scalars) -> list[str]:
    """What a features cache must match to be read: the rows, the version of probe_features' numbers, the model,
    its window and the features asked for."""
    from restlm.reward_models.probe_features import FEATURES_VERSION

    return [hash_rows(rows), FEATURES_VERSION, str(source), str(max_length), ",".join(map(str, layers)),
            ",".join(pools), ",".join(scalars)]


def cached_arrays(cache: str | Path | None, key: Sequence[str], compute) -> tuple[dict[str, np.ndarray], float]:
    """(arrays by name, seconds `compute()` took): read from the .npz `cache` when it was written with this `key`
    (the seconds then are those recorded when it was made), else computed and written there whole or not at all."""
    key = np.array(list(key))
    if cache is not None and Path(cache).is_file():
        saved = np.load(cache)
        if list(saved["key"]) == list(key):
            return {name: saved[name] for name in saved.files if name not in ("key", "seconds")}, float(saved["seconds"])
    start = time.perf_counter()
    arrays = compute()
    seconds = time.perf_counter() - start
    if cache is not None:
        Path(cache).parent.mkdir(parents=True, exist_ok=True)
        part = Path(str(cache) + ".part.npz")
        np.savez(part, key=key, seconds=seconds, **arrays)
        part.replace(cache)
    return arrays, seconds


def hash_rows(rows) -> str:
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()


def nested_cv(members: Sequence[tuple[dict, dict]], outer: int, inner: int, calibration_pairs: int = 200,
              seed: int = 1) -> dict:
    """Pairwise accuracy over `outer` folds of all the pairs of a probe, or of an ensemble of probes.

    members: each member's (chosen, rejected) features by layer, rows in the same pair order. In every
    fold each member is chosen and fitted by `fit_probe` on the other folds alone; several members are
    combined as `combine_reward_models` combines saved ones (each member's rewards divided by their std
    on the fold's first `calibration_pairs` training pairs' responses, then averaged: centring cancels
    in a difference).
    """
    from restlm.reward_models.probe import fit_probe

    n = len(next(iter(members[0][0].values())))
    right, layers = 0.0, [[] for _ in members]
    for test in np.array_split(np.random.default_rng(seed).permutation(n), outer):
        train = np.setdiff1d(np.arange(n), test)
        calibration = train[:calibration_pairs]
        margins = np.zeros(len(test))
        for (chosen, rejected), chosen_layers in zip(members, layers, strict=True):
            fit = fit_probe({k: v[train] for k, v in chosen.items()}, {k: v[train] for k, v in rejected.items()}, inner)
            margin = (chosen[fit.layer][test] - rejected[fit.layer][test]) @ fit.weights
            if len(members) > 1:
                rewards = np.concatenate([chosen[fit.layer][calibration], rejected[fit.layer][calibration]]) @ fit.weights
                margin = margin / max(float(rewards.std()), 1e-8)
            margins += margin
            chosen_layers.append(fit.layer)
        right += float(np.sum(margins > 0) + 0.5 * np.sum(margins == 0))
    accuracy = right / n
    return {"pairs": n, "outer_folds": outer, "accuracy": accuracy,
            "standard_error": float(np.sqrt(accuracy * (1 - accuracy) / n)),
            "layers_chosen": layers[0] if len(members) == 1 else layers}
