"""One fine-tuning pass of a policy on weighted (input, output) items: SFT and every Improve step."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from restlm.config import TrainConfig
from restlm.losses import LOSSES
from restlm.policies.base import Policy, TrainItem


@dataclass
class TrainStats:
    steps: int
    examples: int
    mean_loss: float
    wall_time_s: float

    @property
    def examples_per_s(self) -> float:
        return self.examples / max(self.wall_time_s, 1e-9)


def length_bucketed_order(lengths: Sequence[int], batch_size: int, rng: np.random.Generator) -> list[int]:
    """A shuffled order whose batches hold inputs of similar length (less padding, same epoch).

    Shuffle, sort inside windows of 50 batches by length, cut into batches, shuffle the batches.
    """
    order = rng.permutation(len(lengths))
    window = batch_size * 50
    batches = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: lengths[i])
        batches += [chunk[j : j + batch_size] for j in range(0, len(chunk), batch_size)]
    return [int(i) for b in (batches[k] for k in rng.permutation(len(batches))) for i in b]


def _shard_for(accelerator, policy: Policy):
    def collate(items):
        per_process = -(-len(items) // accelerator.num_processes)
        start = accelerator.process_index * per_process
        # a process whose shard is empty (tiny last batch) repeats the last item, weight 0
        shard = items[start : start + per_process] or [TrainItem(items[-1].example, items[-1].output, 0.0)]
        return policy.collate(shard)

    return collate


def train_policy(
    policy: Policy,
    items: Sequence[TrainItem],
    cfg: TrainConfig,
    learning_rate: float,
    epochs: int,
    seed: int,
    loss: str = "bc",
    description: str = "train",
    on_step: Callable[[int, float], None] | None = None,
) -> TrainStats:
    """Fine-tune `policy` in place on `items`; reproducible for a seed whatever the process count.

    `cfg.batch_size` is the global batch: accelerate splits each batch across processes.
    """
    accelerator = policy.accelerator
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)  # dropout masks
    loss_fn = LOSSES[loss]
    lengths = [policy.input_length(item.example) for item in items]
    ordered = []
    for _ in range(epochs):
        ordered += [items[i] for i in length_bucketed_order(lengths, cfg.batch_size, rng)]
    # global batches, each cut into one contiguous shard per process; DDP averages the gradients
    loader = DataLoader(ordered, batch_size=cfg.batch_size, shuffle=False, collate_fn=_shard_for(accelerator, policy))
    optimizer = torch.optim.AdamW(policy.model.parameters(), lr=learning_rate, weight_decay=cfg.weight_decay)
    total = len(loader)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * total), total)
    policy.model.train()
    losses, start = [], time.perf_counter()
    bar = tqdm(loader, desc=description, disable=not accelerator.is_local_main_process, leave=False)
    for step, batch in enumerate(bar):
        batch = {k: v.to(accelerator.device) for k, v in batch.items()}
        with accelerator.autocast():
            value = loss_fn(policy.output_log_probs(batch), batch["weights"])
        accelerator.backward(value)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        losses.append(accelerator.reduce(value.detach(), "mean").item())
        bar.set_postfix(loss=f"{losses[-1]:.4f}")
        if on_step:
            on_step(step, losses[-1])
    return TrainStats(total, len(ordered), float(np.mean(losses)) if losses else float("nan"), time.perf_counter() - start)
