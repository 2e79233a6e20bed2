"""Offline losses of the Improve step, on log-probabilities of (input, output) pairs."""
from __future__ import annotations

import torch


def bc_loss(log_probs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Behaviour cloning: the weighted mean negative log-likelihood of the kept outputs."""
    return -(weights * log_probs).sum() / weights.sum().clamp_min(1e-8)


LOSSES = {"bc": bc_loss}
