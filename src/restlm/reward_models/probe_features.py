"""What a linear-probe reward model reads from one frozen forward pass over (prompt, response) pairs.

  last@L   what the model's own head reads at depth L (causal, Llama family: the final norm of layer L's state
           at the last token; encoder, BERT family: the pooler on layer L's [CLS] state). A probe on it alone
           is an ordinary HF sequence classifier cut to L layers (probe.apply_probe).
  mean@L   the mean of layer L's states (normed as `last` is, for a causal backbone) over the response's tokens
  logp     (a causal backbone whose LM head is its input embeddings, as SmolLM2's) the response's summed and
           mean token log-probability under the backbone's own language model: an instruct model's judgement
  length   log(1 + the response's tokens in the window): the bias every HH-RLHF reward model learns

`probe_candidates` lays them side by side as the feature sets a probe's cross-validation chooses among.
Rows are float32, in input order.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from restlm.reward_models.model import RewardModel
from restlm.reward_models.probe import backbone, first_layers, layer_count, one_output_head

FEATURES_VERSION = "1"  # raise when these functions compute other numbers: feature caches are then redone
POOLS = ("last", "mean")
SCALARS = {"logp": 2, "length": 1}  # name -> columns
LOGIT_ROWS = 1024  # positions whose vocabulary-wide log-softmax is taken at once (49k floats each for SmolLM2)


def probe_features(reward_model: RewardModel, prompts: Sequence[str], responses: Sequence[str],
                   layers: Sequence[int], pools: Sequence[str] = ("last",), scalars: Sequence[str] = (),
                   batch_size: int = 16) -> dict[str, np.ndarray]:
    """Features named `POOL@L` for each pool and layer, and each scalar feature by its name."""
    count = layer_count(reward_model)
    if bad := [layer for layer in layers if not 1 <= layer <= count]:
        raise ValueError(f"layers {bad} are outside 1..{count}")
    if bad := [p for p in pools if p not in POOLS] + [s for s in scalars if s not in SCALARS]:
        raise ValueError(f"unknown probe features {bad}; known: {', '.join([*POOLS, *SCALARS])}")
    if "logp" in scalars:
        _language_model_head(reward_model)  # refused before the pass, not after it
    base = backbone(reward_model)
    width = one_output_head(reward_model).in_features
    out = {f"{pool}@{layer}": np.zeros((len(prompts), width), dtype=np.float32) for pool in pools for layer in layers}
    out.update({name: np.zeros((len(prompts), SCALARS[name]), dtype=np.float32) for name in scalars})
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]) + len(responses[i]))
    # logp reads the last layer; a pool reads no deeper than its layers, length none
    depth = count if "logp" in scalars else max(layers if pools else [], default=1)
    was_training = reward_model.model.training
    reward_model.model.eval()
    with torch.no_grad(), first_layers(reward_model, depth):
        for start in tqdm(range(0, len(order), batch_size), desc="probe features", leave=False):
            idx = order[start : start + batch_size]
            batch, response = reward_model.encode_marking_responses([prompts[i] for i in idx],
                                                                    [responses[i] for i in idx])
            batch = {k: v.to(reward_model.device) for k, v in batch.items()}
            response = response.to(reward_model.device)
            extra = {"use_cache": False} if reward_model.kind == "causal" else {}
            hidden = base(**batch, output_hidden_states=True, **extra).hidden_states
            for layer in layers:
                if "last" in pools:
                    out[f"last@{layer}"][idx] = _head_input(reward_model, hidden[layer], batch["attention_mask"],
                                                            last=layer == depth).float().cpu().numpy()
                if "mean" in pools:
                    states = _normed(reward_model, hidden[layer], last=layer == depth)
                    weights = response.unsqueeze(-1).to(states.dtype)
                    mean = (states * weights).sum(1) / weights.sum(1).clamp_min(1)
                    out[f"mean@{layer}"][idx] = mean.float().cpu().numpy()
            if "logp" in scalars:
                out["logp"][idx] = _response_log_probs(reward_model, hidden[depth], batch["input_ids"], response)
            if "length" in scalars:
                out["length"][idx] = np.log1p(response.sum(1, keepdim=True).float().cpu().numpy())
    reward_model.model.train(was_training)
    return out


def layer_features(reward_model: RewardModel, prompts: Sequence[str], responses: Sequence[str],
                   layers: Sequence[int], batch_size: int = 16) -> dict[int, np.ndarray]:
    """For each L in `layers`, one row per (prompt, response): what the head of an L-layer backbone reads."""
    features = probe_features(reward_model, prompts, responses, layers, ("last",), (), batch_size)
    return {layer: features[f"last@{layer}"] for layer in layers}


def probe_candidates(features: dict[str, np.ndarray], layers: Sequence[int], pools: Sequence[str],
                     scalars: Sequence[str] = ()) -> dict[str, np.ndarray]:
    """The feature sets one probe chooses among: per layer, its pools side by side and the scalars after them
    (`last+mean@12+logp`); with no pools, the scalars alone as one set (`logp+length`)."""
    tail = [features[name] for name in scalars]
    if not pools:
        return {"+".join(scalars): np.hstack(tail)}
    suffix = "".join(f"+{name}" for name in scalars)
    return {f"{'+'.join(pools)}@{layer}{suffix}": np.hstack([*(features[f"{p}@{layer}"] for p in pools), *tail])
            for layer in layers}


def _normed(reward_model: RewardModel, hidden: torch.Tensor, last: bool) -> torch.Tensor:
    """Layer states on the scale the head reads: a causal backbone's final norm (the last layer's come out
    normed); an encoder's layers end in their own LayerNorm."""
    if reward_model.kind == "causal" and not last:
        return backbone(reward_model).norm(hidden)
    return hidden


def _head_input(reward_model: RewardModel, hidden: torch.Tensor, mask: torch.Tensor, last: bool) -> torch.Tensor:
    base = backbone(reward_model)
    if reward_model.kind == "causal":  # the head reads the last real token
        return _normed(reward_model, hidden, last)[torch.arange(len(hidden)), mask.sum(dim=1) - 1]
    if getattr(base, "pooler", None) is None:
        raise ValueError(f"{type(base).__name__} has no pooler; probes support BERT-like encoders with one")
    return base.pooler(hidden)


def _language_model_head(reward_model: RewardModel) -> torch.Tensor:
    """The output embedding matrix of a causal backbone that ties it to its input embeddings."""
    config = reward_model.model.config
    if reward_model.kind != "causal" or not getattr(config, "tie_word_embeddings", False):
        raise ValueError("the logp feature needs a causal backbone whose language-model head is its input "
                         f"embeddings (tie_word_embeddings); {config.model_type} as a {reward_model.kind} is not one")
    return backbone(reward_model).get_input_embeddings().weight


def _response_log_probs(reward_model: RewardModel, final: torch.Tensor, input_ids: torch.Tensor,
                        response: torch.Tensor) -> np.ndarray:
    """(sum, mean) of log p(token | what precedes it) over each row's response tokens; `final` is the last
    layer's (normed) states. A response's first token is predicted from the prompt's last position."""
    head = _language_model_head(reward_model)
    rows, cols = response.nonzero(as_tuple=True)
    keep = cols > 0  # a token at position 0 has nothing before it (never a response token after the BOS)
    rows, cols = rows[keep], cols[keep]
    log_probs = torch.zeros(len(rows), device=final.device)
    for start in range(0, len(rows), LOGIT_ROWS):
        r, c = rows[start : start + LOGIT_ROWS], cols[start : start + LOGIT_ROWS]
        logits = (final[r, c - 1] @ head.T).float()
        log_probs[start : start + LOGIT_ROWS] = logits.log_softmax(-1).gather(1, input_ids[r, c].unsqueeze(1))[:, 0]
    total = torch.zeros(len(final), device=final.device).index_add_(0, rows, log_probs)
    tokens = torch.zeros(len(final), device=final.device).index_add_(0, rows, torch.ones_like(log_probs))
    return torch.stack([total, total / tokens.clamp_min(1)], dim=1).cpu().numpy()
