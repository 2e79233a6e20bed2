"""Offline losses of the Improve step: BC, GOLD and BVMPO, on log-probabilities of (input, output) pairs.

Every loss in LOSSES is called the same way:

    loss(log_probs, weights, *, mask=None, ref_log_probs=None, **hyperparameters) -> scalar

  log_probs      Tensor[B] of log p(y|x) per item, or Tensor[B, T] of per-token log p(y_t|x, y<t)
                 with `mask` Tensor[B, T] (1 on output tokens, 0 on padding and prompt).
  weights        Tensor[B], the item weights of the batch (`TrainItem.weight`): a 0/1 or >= 0
                 weight for BC; the reward, normalised to [0, 1], for GOLD and BVMPO.
  ref_log_probs  Tensor[B], log pi_ref(y|x) under the frozen reference (BC) policy, computed
                 without gradients before the Improve step; BVMPO only, ignored by the others.

LOSS_NEEDS says, per loss, what the training loop must supply beyond log_probs and weights.
A per-item (classifier) policy can feed every loss with Tensor[B]: GOLD then treats each output
as one token.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class LossNeeds:
    token_level: bool = False
    """uses per-token log-probs (Tensor[B, T] and a mask) when the policy can give them"""
    reference: bool = False
    """needs `ref_log_probs`: the reference policy's log p(y|x) per item, precomputed"""
    rewards_as_weights: bool = False
    """the item weights are rewards in [0, 1] (not 0/1 keep flags)"""
    normalised_by_weight: bool = False
    """the loss is a weighted mean (divided by the sum of weights), not a mean over items"""


def sequence_log_probs(log_probs: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """log p(y|x) per item, Tensor[B]: `log_probs` itself when 1-D, else its sum over `mask`."""
    if log_probs.dim() == 1:
        return log_probs
    return _masked(log_probs, mask).sum(-1)


def bc_loss(log_probs: torch.Tensor, weights: torch.Tensor, *, mask: torch.Tensor | None = None,
            ref_log_probs: torch.Tensor | None = None) -> torch.Tensor:
    """Behaviour cloning: the weighted mean negative log-likelihood of the kept outputs.

    loss = -sum_i w_i log p(y_i|x_i) / sum_i w_i   (0 when every weight is 0). `ref_log_probs`
    is accepted, so every loss takes the same arguments, and unused.
    """
    return -weighted_mean(sequence_log_probs(log_probs, mask), weights)


def weighted_mean(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """sum_i w_i v_i / sum_i w_i over a batch (0 when every weight is 0)."""
    weights = weights.to(values.dtype)
    return (weights * values).sum() / weights.sum().clamp_min(1e-8)


def gold_loss(log_probs: torch.Tensor, rewards: torch.Tensor, *, mask: torch.Tensor | None = None,
              ref_log_probs: torch.Tensor | None = None, lower_bound: float = 0.2) -> torch.Tensor:
    """GOLD: offline policy gradient with per-token importance weights from the policy itself.

    Pang & He (2021), "Text Generation by Learning from Demonstrations" (ICLR 2021): the offline
    policy gradient with the per-token approximation of the importance weight, bounded below by u:

        loss = -(1/B) sum_i R_i sum_t w_it log p(y_it | x_i, y_i<t),   w_it = max(p(y_it|...).detach(), u)

    R_i is the item's reward (its weight, normalised to [0, 1]), the return Q of every token of a
    sequence-level reward. Approximations: the paper's weighting policy is a periodically
    synchronised copy of pi; here it is the current pi, detached (synchronised every step).
    B counts every item of the batch, zero-reward ones included. 1-D `log_probs` are read as
    one token per item. `ref_log_probs` is unused.
    """
    if not 0.0 < lower_bound <= 1.0:
        raise ValueError(f"lower_bound must be in (0, 1], not {lower_bound}")
    if log_probs.dim() == 1:
        log_probs, mask = log_probs[:, None], None
    tokens = _masked(log_probs, mask)
    importance = tokens.detach().exp().clamp_min(lower_bound)
    per_item = (importance * tokens).sum(-1)
    return -(rewards.to(per_item.dtype) * per_item).sum() / len(per_item)


def bvmpo_loss(log_probs: torch.Tensor, rewards: torch.Tensor, *, mask: torch.Tensor | None = None,
               ref_log_probs: torch.Tensor | None = None, eta: float = 1.0, alpha: float = 0.1,
               top_fraction: float = 0.5) -> torch.Tensor:
    """BVMPO: V-MPO's weighted likelihood with the BC policy as the KL reference.

    Gulcehre et al. (2023), "Reinforced Self-Training (ReST) for Language Modeling" (arXiv:2308.08998),
    one of its Improve-step losses, after Song et al. (2020), "V-MPO: On-Policy Maximum a Posteriori
    Policy Optimization" (ICLR 2020).
    With A_i = R_i - mean_j R_j and S the ceil(top_fraction * B) items of largest A:

        psi_i = exp(A_i / eta) / sum_{j in S} exp(A_j / eta)  for i in S, else 0
        loss  = -sum_i psi_i log pi(y_i|x_i) + alpha * (1/B) sum_i [log pi_ref(y_i|x_i) - log pi(y_i|x_i)]

    The second term is a Monte-Carlo estimate of KL(pi_ref || pi) on the batch's outputs, which
    is unbiased when they were sampled from pi_ref (the Grow step's policy); on one batch it can
    be negative. Approximations to V-MPO: eta and alpha are fixed, not learned by their
    Lagrangian losses, and S and the softmax are taken over this batch (one process's shard under
    DDP). The batch-mean baseline only shifts every A, which the top-S choice and the softmax
    ignore; for a per-input baseline, pass R minus the mean reward of that input's samples as
    the weights. Ties at the top-S cut are broken by torch.topk.
    """
    if ref_log_probs is None:
        raise ValueError("bvmpo needs ref_log_probs: the reference policy's log p(y|x) of each item")
    if eta <= 0 or not 0.0 < top_fraction <= 1.0:
        raise ValueError(f"need eta > 0 and 0 < top_fraction <= 1, not eta={eta}, top_fraction={top_fraction}")
    seq = sequence_log_probs(log_probs, mask)
    advantages = rewards.to(seq.dtype).detach()
    advantages = advantages - advantages.mean()
    top = torch.topk(advantages, max(1, math.ceil(top_fraction * len(seq)))).indices
    psi = torch.zeros_like(seq).index_put((top,), torch.softmax(advantages[top] / eta, 0))
    kl = (ref_log_probs.to(seq.dtype) - seq).mean()
    return -(psi * seq).sum() + alpha * kl


def _masked(token_log_probs: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return token_log_probs
    # where, not multiply: a padded position may hold -inf, and 0 * -inf is nan
    return torch.where(mask.bool(), token_log_probs, torch.zeros_like(token_log_probs))


LOSSES = {"bc": bc_loss, "gold": gold_loss, "bvmpo": bvmpo_loss}
LOSS_NEEDS = {
    "bc": LossNeeds(normalised_by_weight=True),
    "gold": LossNeeds(token_level=True, rewards_as_weights=True),
    "bvmpo": LossNeeds(reference=True, rewards_as_weights=True),
}
