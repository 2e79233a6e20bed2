"""Supervised training, in one place: `optimise` is the loop (AdamW, linear warm-up and decay, a
finite-loss check before every step, losses averaged over processes) under every supervised run:
`train_policy` (SFT and every Improve step) and the reward models' Bradley-Terry training."""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from restlm.config import TrainConfig
from restlm.losses import LOSS_NEEDS, LOSSES, weighted_mean
from restlm.policies.base import Policy, TrainItem
from restlm.precision import training_autocast


@dataclass
class TrainStats:
    steps: int
    examples: int
    mean_loss: float
    wall_time_s: float
    dtype: str = "float32"  # of the forward passes (train.dtype resolved)

    @property
    def examples_per_s(self) -> float:
        return self.examples / max(self.wall_time_s, 1e-9)


def steps_per_epoch(items: int, batch_size: int) -> int:
    """The batches of one epoch of `length_bucketed_batches`: its windows hold whole batches, so only the last
    batch may be short."""
    return -(-items // batch_size)


def length_bucketed_batches(lengths: Sequence[int], batch_size: int, rng: np.random.Generator) -> list[list[int]]:
    """One epoch of batches whose inputs have similar lengths (less padding), in shuffled order.

    Shuffle, sort inside windows of 50 batches by length, cut into batches, shuffle the batches.
    """
    order = rng.permutation(len(lengths))
    window = batch_size * 50
    batches = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: lengths[i])
        batches += [[int(i) for i in chunk[j : j + batch_size]] for j in range(0, len(chunk), batch_size)]
    return [batches[k] for k in rng.permutation(len(batches))]


def length_bucketed_order(lengths: Sequence[int], batch_size: int, rng: np.random.Generator) -> list[int]:
    """The batches of `length_bucketed_batches`, flattened."""
    return [i for batch in length_bucketed_batches(lengths, batch_size, rng) for i in batch]


def shard(batch: list[int], index: int, count: int) -> tuple[list[int], float]:
    """Process `index`'s contiguous share of a global batch, and the factor on its mean loss.

    DDP averages the processes' gradients; scaled by count * share / batch, the shards' mean losses
    average to the global batch's mean loss even when shares differ in size. A process whose
    share is empty (a last batch smaller than `count`) runs the last pair at factor 0.
    """
    size = -(-len(batch) // count)
    own = batch[index * size : (index + 1) * size]
    return (own, count * len(own) / len(batch)) if own else (batch[-1:], 0.0)


def _shard_for(accelerator, policy: Policy, loss: str):
    """Collate this process's contiguous shard of a global batch.

    'shard_scale' makes the shard's mean loss, once DDP averages gradients over processes, equal
    the mean over the whole global batch even when shards differ in size (or weight).
    """
    by_weight = LOSS_NEEDS[loss].normalised_by_weight

    def collate(items):
        per_process = -(-len(items) // accelerator.num_processes)
        start = accelerator.process_index * per_process
        # a process whose shard is empty (tiny last batch) repeats the last item, weight 0
        part = items[start : start + per_process] or [dataclasses.replace(items[-1], weight=0.0)]
        batch = policy.collate(part)
        size = (lambda part: sum(i.weight for i in part)) if by_weight else len
        own = size(items[start : start + per_process])
        batch["shard_scale"] = torch.tensor(accelerator.num_processes * own / max(size(items), 1e-12))
        if part[0].ref_log_prob is not None:
            batch["ref_log_probs"] = torch.tensor([item.ref_log_prob for item in part], dtype=torch.float32)
        return batch

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
    reference: Policy | None = None,
    kl_coef: float = 0.0,
    max_steps: int | None = None,
    after_epoch: Callable[[int], bool] | None = None,
) -> TrainStats:
    """Fine-tune `policy` in place on `items`; reproducible for a seed whatever the process count.

    `cfg.batch_size` is the global batch: accelerate splits each batch across processes.
    `kl_coef` > 0 adds kl_coef x KL(policy || reference) to the loss: the exact KL of the next-token
    distributions summed over each item's output tokens, averaged over the batch the way the loss is
    (by weight or by item). A generative policy and a frozen `reference` of the same tokenizer only.
    `max_steps`: exactly this many optimiser steps, the epochs repeated as often as needed (`epochs` is then
    ignored; the schedule spans the steps). `after_epoch(epoch)` is called after each full epoch (from 1);
    returning True ends training there (early stopping).
    """
    accelerator = policy.accelerator
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)  # dropout masks
    loss_fn, needs = LOSSES[loss], LOSS_NEEDS[loss]
    if needs.reference and any(item.ref_log_prob is None for item in items):
        raise ValueError(f"loss '{loss}' needs TrainItem.ref_log_prob on every item")
    if kl_coef and (reference is None or not hasattr(policy, "output_token_log_probs_and_kl")):
        raise ValueError("kl_coef needs a generative (causal or seq2seq) policy and a reference policy")
    if max_steps and not items:
        raise ValueError(f"{description}: {max_steps} optimiser steps asked on no training items")
    lengths = [policy.input_length(item.example) for item in items]
    per_epoch = []  # `epochs` epochs of batches, or as many as `max_steps` reaches into
    while (len(per_epoch) < epochs) if max_steps is None else (sum(map(len, per_epoch)) < max_steps):
        per_epoch.append(length_bucketed_batches(lengths, cfg.batch_size, rng))
    batches = [b for epoch in per_epoch for b in epoch][:max_steps]
    ends = np.cumsum([len(epoch) for epoch in per_epoch])  # the step after which each epoch is complete
    # global batches, each cut into one contiguous shard per process; DDP averages the gradients
    loader = DataLoader(items, batch_sampler=batches, collate_fn=_shard_for(accelerator, policy, loss))

    precision, dtype = training_autocast(cfg.dtype, accelerator.device)

    def batch_loss(batch: dict) -> torch.Tensor:
        batch = {k: v.to(accelerator.device) for k, v in batch.items()}
        with accelerator.autocast(), precision:
            if kl_coef:  # per-token log-probs: every loss sums them over the mask itself
                log_probs, mask, kl = policy.output_token_log_probs_and_kl(batch, reference)
            elif needs.token_level:
                log_probs, mask = policy.output_token_log_probs(batch)
            else:
                log_probs, mask = policy.output_log_probs(batch), None
            value = loss_fn(log_probs, batch["weights"], mask=mask, ref_log_probs=batch.get("ref_log_probs"))
            if kl_coef:
                per_item = kl.sum(-1)
                value = value + kl_coef * (weighted_mean(per_item, batch["weights"]) if needs.normalised_by_weight
                                           else per_item.mean())
            return value * batch["shard_scale"]

    def step_done(step: int, loss: float) -> bool:
        if on_step:
            on_step(step, loss)
        if after_epoch is None or step + 1 not in ends:
            return False
        stop = after_epoch(int(np.searchsorted(ends, step + 1)) + 1)
        policy.model.train()  # an evaluation in after_epoch leaves the model in eval mode
        return bool(stop)

    params = list(policy.model.parameters())
    losses, elapsed = optimise(accelerator, policy.model, params, loader, batch_loss, learning_rate, cfg.weight_decay,
                               cfg.warmup_ratio, description, on_step=step_done)
    return TrainStats(len(losses), sum(len(b) for b in batches[:len(losses)]),
                      float(np.mean(losses)) if losses else float("nan"), elapsed, dtype)


def optimise(accelerator, model, params: list, batches, batch_loss: Callable[[object], torch.Tensor],
             learning_rate: float, weight_decay: float, warmup_ratio: float, description: str,
             max_grad_norm: float | None = None, prepare: Callable | None = None,
             on_step: Callable[[int, float], bool | None] | None = None,
             postfix: Callable[[int], dict] | None = None,
             ) -> tuple[list[float], float]:
    """The supervised loop: AdamW on `params`, linear warm-up then decay over the batches, one step per
    batch of `batch_loss(batch)` (this process's share, scaled so DDP's average is the global mean).
    A non-finite loss stops it before its step (NonFiniteError naming `description`).
    prepare(optimizer, scheduler) -> (optimizer, scheduler): accelerate's prepare, when the caller
    wraps its model there. `on_step(step, loss)` returning True stops the loop after that step.
    Returns (each step's loss averaged over processes, seconds)."""
    optimizer = torch.optim.AdamW(params, lr=learning_rate, weight_decay=weight_decay)
    total = len(batches)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(warmup_ratio * total), total)
    if prepare is not None:
        optimizer, scheduler = prepare(optimizer, scheduler)
    model.train()
    losses, start = [], time.perf_counter()
    bar = tqdm(batches, desc=description, disable=not accelerator.is_local_main_process, leave=False)
    try:
        for step, batch in enumerate(bar):
            value = batch_loss(batch)
            require_finite_loss(value, description, step, total)  # before the step: the weights stay as they were
            accelerator.backward(value)
            if max_grad_norm is not None:
                accelerator.clip_grad_norm_(params, max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            losses.append(accelerator.reduce(value.detach(), "mean").item())
            bar.set_postfix(loss=f"{losses[-1]:.4f}", **(postfix(step) if postfix else {}))
            if on_step and on_step(step, losses[-1]):
                break
    finally:
        bar.close()  # also when a loss is not finite: the error line is then the last thing on the terminal
    return losses, time.perf_counter() - start


def require_finite_loss(value: torch.Tensor, where: str, step: int, total: int) -> None:
    """NonFiniteError naming the stage when a loss is NaN or infinite: training stops there, nothing of
    the stage is saved (earlier stages stay recorded), instead of 'finishing' on garbage weights."""
    if not torch.isfinite(value.detach()).all():
        from restlm.errors import NonFiniteError

        raise NonFiniteError(f"stage '{where}': the training loss is {value.item()} at step {step + 1} of {total}; "
                             "stopped with earlier stages saved (lower the learning rate, then start a new run)")
