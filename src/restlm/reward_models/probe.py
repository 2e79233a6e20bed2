"""Linear-probe reward models: the backbone frozen (cut to its first L layers), the head fitted exactly.

Bradley-Terry with a linear reward r = w . f(prompt, response) is logistic regression on the feature
differences f(chosen) - f(rejected), with no intercept. scikit-learn fits it to convergence, its L2
strength and the layer L chosen by cross-validation on the training pairs alone. The backbone runs
forward once per response and never backward, so on a CPU a probe costs one scoring pass over the
pairs, where fine-tuning costs a training run (SmolLM2 + LoRA: over an hour for 1800 pairs here).

f is exactly what the model's own head reads when the backbone has L layers:
  causal  (Llama family)  the final norm of layer L's hidden state at the last token
  encoder (BERT family)   the pooler on layer L's [CLS] hidden state
so the result is an ordinary HF sequence classifier with L layers: a RewardModel like any other,
saved and loaded (`reward_model:PATH`) as one, and cheaper to score than the full backbone.
"""
from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch

from restlm.reward_models.model import RewardModel

DEFAULT_CS = tuple(float(c) for c in np.logspace(-6, 1, 15))  # inverse L2 strengths tried, half a decade apart


@dataclass
class ProbeFit:
    """A fitted head: the layer it reads (or the feature set, `probe_features.probe_candidates`), its weights on
    those raw features, and how it was chosen."""
    layer: int | str
    weights: np.ndarray
    c: float
    cv_accuracy: float
    cv_accuracy_by_layer: dict[int | str, float] = field(default_factory=dict)


# ---- the backbone
def backbone(reward_model: RewardModel):
    return reward_model.model.base_model


def backbone_layers(reward_model: RewardModel) -> torch.nn.ModuleList:
    base = backbone(reward_model)
    layers = getattr(base, "layers", None)
    if layers is None and hasattr(base, "encoder"):
        layers = getattr(base.encoder, "layer", None)
    if not isinstance(layers, torch.nn.ModuleList):
        raise ValueError(f"cannot find the layers of a {type(base).__name__}; probes support Llama- and BERT-like models")
    return layers


def layer_count(reward_model: RewardModel) -> int:
    return len(backbone_layers(reward_model))


def default_layers(count: int, tried: int = 8) -> list[int]:
    """About `tried` evenly spaced layer counts, the full backbone always among them."""
    step = max(1, count // tried)
    return sorted({*range(step, count + 1, step), count})


def one_output_head(reward_model: RewardModel) -> torch.nn.Linear:
    model = reward_model.model
    head = getattr(model, "score", None) or getattr(model, "classifier", None)
    if not isinstance(head, torch.nn.Linear) or head.out_features != 1:
        raise ValueError(f"{type(model).__name__} has no one-output linear head (score or classifier)")
    return head


# ---- the fit
def fit_probe(chosen: dict[int | str, np.ndarray], rejected: dict[int | str, np.ndarray], folds: int = 5,
              cs: Sequence[float] = DEFAULT_CS, seed: int = 0) -> ProbeFit:
    """The layer (or feature set) and L2 strength of best cross-validated pairwise accuracy, refitted on all pairs.

    chosen / rejected: `layer_features` of the pairs' chosen and rejected responses, by layer, or
    `probe_candidates` by name. Ties go to the smaller layer, or to the set named first.
    Each pair enters twice, as (d, 1) and (-d, 0), and both copies always fall in the same fold.
    Features are scaled by the std of d (the weights are returned on the raw scale). scikit-learn's
    LogisticRegressionCV walks the C path with warm starts, fold by fold; Newton-Cholesky suits many
    pairs and a few hundred features (a handful of iterations where L-BFGS needs hundreds at weak penalties).
    """
    n = len(next(iter(chosen.values())))
    if n < 2 * folds:
        raise ValueError(f"{n} preference pairs are too few for {folds}-fold cross-validation")
    splits = _pair_folds(n, folds, seed)
    fits = {layer: _fit_layer(chosen[layer] - rejected[layer], splits, cs) for layer in chosen}
    order = sorted(fits) if all(isinstance(k, int) for k in fits) else list(fits)  # shallower: cheaper
    layer = max(fits, key=lambda k: (fits[k][2], -order.index(k)))
    weights, c, accuracy = fits[layer]
    return ProbeFit(layer, weights, c, accuracy, {k: v[2] for k, v in fits.items()})


def _pair_folds(n: int, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) row indices of the symmetric data (pair i is rows i and n + i), pairs split at random."""
    rows = np.arange(2 * n)
    splits = []
    for test in np.array_split(np.random.default_rng(seed).permutation(n), folds):
        test = np.concatenate([test, test + n])
        splits.append((np.setdiff1d(rows, test), test))
    return splits


def _fit_layer(diff: np.ndarray, splits, cs: Sequence[float]) -> tuple[np.ndarray, float, float]:
    """(raw-scale weights refitted on all pairs, chosen C, its cross-validated pairwise accuracy)."""
    from sklearn.linear_model import LogisticRegressionCV

    std = diff.std(axis=0)
    scale = np.where(std > 1e-12, std, 1.0)
    x = diff / scale
    # Cs ascending: among tied scores sklearn keeps the first, the strongest penalty
    model = LogisticRegressionCV(Cs=sorted(cs), cv=splits, fit_intercept=False, scoring="accuracy", l1_ratios=(0.0,),
                                 solver="newton-cholesky", max_iter=100, use_legacy_attributes=False)
    model.fit(np.concatenate([x, -x]), np.concatenate([np.ones(len(x)), np.zeros(len(x))]))
    # accuracy over the symmetric rows is pairwise accuracy: both copies are right or both wrong
    accuracy = float(model.scores_.mean(axis=0).max())
    return model.coef_[0] / scale, float(model.C_), accuracy


# ---- the model
def apply_probe(reward_model: RewardModel, fit: ProbeFit) -> RewardModel:
    """Cut the backbone to `fit.layer` layers and load the fitted weights into its head, in place."""
    if not isinstance(fit.layer, int):
        raise ValueError(f"a probe on {fit.layer!r} reads more than its head's input; only a probe of one layer's "
                         "head input (layer_features) is an HF classifier that can be saved")
    cut_backbone(reward_model, fit.layer)
    head = one_output_head(reward_model)
    with torch.no_grad():
        head.weight.copy_(torch.as_tensor(fit.weights, dtype=head.weight.dtype).reshape(1, -1))
        if head.bias is not None:
            head.bias.zero_()
    reward_model.model.eval()
    return reward_model


@contextmanager
def first_layers(reward_model: RewardModel, count: int):
    """The backbone runs its first `count` layers only, inside the block (what cut_backbone keeps, undone after):
    features of shallow layers need no pass through the deep ones. transformers installs its hidden-state
    hooks on the first pass that asks for them, on the layers there then: one pass of one token over the whole
    backbone first, or the restored layers would never report their states."""
    extra = {"use_cache": False} if reward_model.kind == "causal" else {}
    with torch.no_grad():
        backbone(reward_model)(input_ids=torch.zeros((1, 1), dtype=torch.long, device=reward_model.device),
                               output_hidden_states=True, **extra)
    layers, config = backbone_layers(reward_model), reward_model.model.config
    removed, types = list(layers[count:]), getattr(config, "layer_types", None)
    cut_backbone(reward_model, count)
    try:
        yield
    finally:
        layers.extend(removed)
        config.num_hidden_layers = len(layers)
        if isinstance(types, list):
            config.layer_types = types


def cut_backbone(reward_model: RewardModel, count: int) -> None:
    """Keep the backbone's first `count` layers, in place: its last state is then layer `count`'s as the final
    norm (Llama) or the layer's own LayerNorm (BERT) leaves it, what the probe features of that layer read."""
    layers = backbone_layers(reward_model)
    del layers[count:]
    config = reward_model.model.config
    config.num_hidden_layers = count
    if isinstance(getattr(config, "layer_types", None), list):
        config.layer_types = config.layer_types[:count]
