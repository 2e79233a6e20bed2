"""The pure pieces of critic-free RL with a group baseline (GRPO, Dr. GRPO, RLOO), tested by hand and
against TRL 1.16's GRPO loss (tests/test_group_objectives.py). No value head: a sample's advantage is
its reward against the other samples of its prompt.

Rewards come as [P * K] tensors, the K samples of each prompt next to each other; per-token tensors
are [B, T] with `mask` 1 on the output tokens, as in `objectives.py`.
"""
from __future__ import annotations

import torch

# SCALES: how GRPO divides the centred rewards: by the group's std (GRPO), the batch's, or not (Dr. GRPO);
# LOSS_TYPES: how the per-token losses are averaged: per sequence then over sequences (GRPO), over every
# token of the batch (BNPO), or over B x max_completion_length (Dr. GRPO: no length normalisation)
from restlm.config.grpo import LOSS_TYPES, SCALES
STD_EPS = 1e-4  # TRL's: a group of equal rewards gets advantage 0, not 0/0


def group_advantages(rewards: torch.Tensor, group_size: int, scale: str = "group") -> tuple[torch.Tensor, torch.Tensor]:
    """GRPO's advantages (reward - its group's mean, divided as `scale` says) and, per sample, whether its
    group's rewards are all equal (such a group teaches nothing: `frac_reward_zero_std`)."""
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {', '.join(SCALES)}; got {scale!r}")
    groups = rewards.view(-1, group_size)
    centred = (groups - groups.mean(dim=1, keepdim=True)).reshape(-1)
    group_std = groups.std(dim=1).repeat_interleave(group_size)  # sample std (n - 1), as TRL's nanstd
    zero_std = torch.isclose(group_std, torch.zeros_like(group_std))
    if scale == "group":
        centred = centred / (group_std + STD_EPS)
    elif scale == "batch":
        centred = centred / (rewards.std() + STD_EPS)
    return centred, zero_std


def leave_one_out_advantages(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """RLOO's advantages: each reward minus the mean of the other K - 1 of its group (K >= 2)."""
    if group_size < 2:
        raise ValueError(f"the leave-one-out baseline needs at least 2 samples per prompt; got {group_size}")
    groups = rewards.view(-1, group_size)
    others = (groups.sum(dim=1, keepdim=True) - groups) / (group_size - 1)
    return (groups - others).reshape(-1)


def group_policy_loss(log_probs: torch.Tensor, old_log_probs: torch.Tensor, advantages: torch.Tensor,
                      mask: torch.Tensor, epsilon_low: float = 0.2, epsilon_high: float = 0.2,
                      loss_type: str = "grpo", max_completion_length: int | None = None, beta: float = 0.0,
                      ref_log_probs: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The clipped surrogate with sequence advantages, per token, plus beta x the k3 KL to the reference;
    returns (loss, {"clip_frac", "kl"}). `old_log_probs` are the sampling policy's: equal to `log_probs`
    (detached) on a batch's first optimiser step, so the ratio is 1 and nothing is clipped."""
    if loss_type not in LOSS_TYPES:
        raise ValueError(f"loss_type must be one of {', '.join(LOSS_TYPES)}; got {loss_type!r}")
    mask = mask.to(log_probs.dtype)
    advantages = advantages.unsqueeze(1)
    ratio = torch.exp(log_probs - old_log_probs)
    clipped = torch.clamp(ratio, 1 - epsilon_low, 1 + epsilon_high)
    per_token = -torch.min(ratio * advantages, clipped * advantages)
    kl = torch.zeros_like(per_token)
    if beta:
        difference = ref_log_probs - log_probs
        kl = torch.exp(difference) - difference - 1  # k3: unbiased, never negative
        per_token = per_token + beta * kl
    tokens = mask.sum().clamp(min=1.0)
    if loss_type == "grpo":
        loss = ((per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
    elif loss_type == "bnpo":
        loss = (per_token * mask).sum() / tokens
    else:
        width = max_completion_length or per_token.shape[1]
        loss = (per_token * mask).sum() / (per_token.shape[0] * width)
    was_clipped = ((ratio < 1 - epsilon_low) & (advantages < 0)) | ((ratio > 1 + epsilon_high) & (advantages > 0))
    stats = {"clip_frac": (was_clipped.to(mask.dtype) * mask).sum() / tokens, "kl": (kl.detach() * mask).sum() / tokens}
    return loss, stats
