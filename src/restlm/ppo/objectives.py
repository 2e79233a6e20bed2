"""The pure pieces of PPO's objective, each a function of tensors (or a small class) tested by hand.

All [B, T] tensors are per token; `mask` is 1 on the output tokens a row is trained on.
"""
from __future__ import annotations

import numpy as np
import torch


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of `values` where `mask` is 1 (0 when the mask is empty)."""
    # where, not multiply: an off-mask position may hold inf
    kept = torch.where(mask.bool(), values, torch.zeros_like(values))
    return kept.sum() / mask.sum().clamp_min(1)


def whiten(values: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True, eps: float = 1e-8) -> torch.Tensor:
    """(values - mean) / std over the mask (population variance), 0 off the mask.

    shift_mean=False adds the mean back: unit variance, same mean (for rewards, whose sign matters).
    """
    mean = masked_mean(values, mask)
    var = masked_mean((values - mean) ** 2, mask)
    out = (values - mean) * torch.rsqrt(var + eps)
    out = out if shift_mean else out + mean
    return torch.where(mask.bool(), out, torch.zeros_like(out))


def kl_penalty_rewards(scores: torch.Tensor, log_probs: torch.Tensor, ref_log_probs: torch.Tensor,
                       mask: torch.Tensor, kl_coef: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token rewards: -kl_coef * (log p - log p_ref) at every output token, plus the score at the last.

    In: scores [B]; log_probs, ref_log_probs, mask [B, T] (mask 1 on output tokens, which are
    contiguous). Out: (rewards [B, T], kl [B, T] = log p - log p_ref), both 0 off the mask.
    """
    mask = mask.bool()
    kl = torch.where(mask, log_probs - ref_log_probs, torch.zeros_like(log_probs))
    rewards = -kl_coef * kl
    last = mask.shape[1] - 1 - mask.flip(-1).int().argmax(-1)  # each row's last output token
    rewards[torch.arange(len(scores)), last] += scores.to(rewards.dtype)
    return rewards, kl


def gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float = 1.0,
        lam: float = 0.95) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation (Schulman et al., 2016) over each row's output tokens.

    In: rewards, values, mask [B, T]. A row's episode ends at its last masked token (no bootstrap
    after it). Out: (advantages, returns = advantages + values), both [B, T] and 0 off the mask.
    A_t = sum_k (gamma lam)^k delta_{t+k},  delta_t = r_t + gamma V_{t+1} - V_t.
    """
    mask = mask.to(rewards.dtype)
    values = values * mask
    # a zero column after the end: the step after the last token has value 0 and carries nothing
    next_values = torch.cat([values[:, 1:], torch.zeros_like(values[:, :1])], dim=1)
    go_on = torch.cat([mask[:, 1:], torch.zeros_like(mask[:, :1])], dim=1)
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.shape[1])):
        delta = rewards[:, t] + gamma * next_values[:, t] * go_on[:, t] - values[:, t]
        running = delta + gamma * lam * go_on[:, t] * running
        advantages[:, t] = running
    advantages = advantages * mask
    return advantages, (advantages + values) * mask


def clipped_policy_loss(log_probs: torch.Tensor, old_log_probs: torch.Tensor, advantages: torch.Tensor,
                        mask: torch.Tensor, clip_range: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """PPO-clip over output tokens: mean of max(-A r, -A clip(r, 1 - eps, 1 + eps)), r = exp(log p - log p_old).

    In: [B, T] tensors and the mask. Out: (loss, clipfrac = share of tokens where the clipped term
    is the larger, approx_kl = mean of (r - 1) - log r, an unbiased KL(old || new) estimate).
    """
    log_ratio = log_probs - old_log_probs
    ratio = log_ratio.exp()
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1 - clip_range, 1 + clip_range)
    loss = masked_mean(torch.maximum(unclipped, clipped), mask)
    with torch.no_grad():
        clipfrac = masked_mean((clipped > unclipped).float(), mask)
        approx_kl = masked_mean((ratio - 1) - log_ratio, mask)
    return loss, clipfrac, approx_kl


def clipped_value_loss(values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor,
                       clip_range: float) -> tuple[torch.Tensor, torch.Tensor]:
    """0.5 * mean over output tokens of max((V - R)^2, (V_clipped - R)^2), V_clipped = V_old + clip(V - V_old, +-eps).

    Out: (loss, clipfrac = share of tokens where the clipped error is the larger).
    """
    clipped = old_values + (values - old_values).clamp(-clip_range, clip_range)
    unclipped_error, clipped_error = (values - returns) ** 2, (clipped - returns) ** 2
    loss = 0.5 * masked_mean(torch.maximum(unclipped_error, clipped_error), mask)
    with torch.no_grad():
        clipfrac = masked_mean((clipped_error > unclipped_error).float(), mask)
    return loss, clipfrac


class KLController:
    """The KL coefficient: fixed when `target` is None, else adaptive (Ziegler et al., 2019, eq. 2).

    update(kl, n): error = clip(kl / target - 1, -0.2, 0.2); value *= 1 + error * n / horizon,
    where kl is the mean KL per sample of the last step and n its number of rollouts.
    """

    def __init__(self, value: float, target: float | None = None, horizon: int = 10000):
        self.value, self.target, self.horizon = float(value), target, horizon

    def update(self, kl: float, n_steps: int) -> float:
        if self.target is not None:
            error = float(np.clip(kl / self.target - 1, -0.2, 0.2))
            self.value *= 1 + error * n_steps / self.horizon
        return self.value
