"""Bradley-Terry training of a reward model on preference pairs, and its pairwise accuracy.

P(chosen preferred to rejected) = sigmoid(r(chosen) - r(rejected)); the loss is its negative
log-likelihood. A plain loop (AdamW, linear warm-up then decay, gradient clipping): TRL's
RewardTrainer drops pairs longer than max_length instead of truncating them (most HH-RLHF
dialogues at 256 tokens), joins prompt and response into one string (no text pair for an
encoder, no left truncation) and needs an EOS token that BERT tokenizers lack.
The loop runs on one process or, under `accelerate launch`, on several (DDP, each global batch
split across them), with the same losses either way.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from restlm.config.ranges import check_ranges
from restlm.data.preferences import PreferencePair
from restlm.reward_models.model import RewardModel


def bradley_terry_loss(chosen: torch.Tensor, rejected: torch.Tensor, margin: torch.Tensor | None = None) -> torch.Tensor:
    """Mean of -log sigmoid(r_chosen - r_rejected - margin) over the pairs (margin 0 by default)."""
    diff = chosen - rejected
    if margin is not None:
        diff = diff - margin
    return -F.logsigmoid(diff).mean()


@dataclass
class RewardTrainConfig:
    learning_rate: float = 2e-5
    """peak learning rate of AdamW"""
    epochs: int = 1
    """passes over the training pairs"""
    batch_size: int = 8
    """preference pairs per optimizer step (each pair is two sequences in one forward)"""
    weight_decay: float = 0.0
    """AdamW weight decay"""
    warmup_ratio: float = 0.1
    """fraction of steps with linear warm-up, then linear decay to 0"""
    max_grad_norm: float = 1.0
    """gradient clipping"""
    seed: int = 0
    """batch order and dropout masks"""

    def validate(self) -> RewardTrainConfig:
        check_ranges(self, "reward_model", positive=("learning_rate", "epochs", "batch_size", "max_grad_norm"),
                     non_negative=("weight_decay",), unit=("warmup_ratio",))
        return self


@dataclass
class RewardTrainStats:
    steps: int
    pairs: int
    mean_loss: float
    wall_time_s: float
    losses: list[float] = field(default_factory=list)

    @property
    def pairs_per_s(self) -> float:
        return self.pairs / max(self.wall_time_s, 1e-9)


def train_reward_model(reward_model: RewardModel, pairs: Sequence[PreferencePair], cfg: RewardTrainConfig,
                       on_step: Callable[[int, float], bool | None] | None = None) -> RewardTrainStats:
    """Fine-tune `reward_model` in place on `pairs`; the same seed gives the same run on any number of processes.

    Under `accelerate launch` every process must call it with the same pairs: each draws the same
    global batches of `cfg.batch_size` pairs and trains on its contiguous share of each, DDP
    averages the gradients, and every process returns the same stats (losses averaged over the
    processes). On one process the model stays on the device it was loaded to; on several it
    moves to its process's device.
    """
    from accelerate import Accelerator, DataLoaderConfiguration

    from restlm.training import length_bucketed_batches, optimise, shard

    if not pairs:
        raise ValueError("no preference pairs to train on")
    # split_batches: a batch is the global one, cut across the processes, so the scheduler steps once per batch
    accelerator = Accelerator(dataloader_config=DataLoaderConfiguration(split_batches=True))
    rng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    lengths = [len(p.prompt) + len(p.chosen) + len(p.rejected) for p in pairs]
    # pairs of similar length share a batch: less padding, the dominant cost at 256 tokens
    batches = [b for _ in range(cfg.epochs) for b in length_bucketed_batches(lengths, cfg.batch_size, rng)]
    params = [p for p in reward_model.model.parameters() if p.requires_grad]
    # one process leaves the model where from_pretrained put it (the GPU, or the device asked for)
    placed, wrapped = accelerator.num_processes > 1, {}

    def prepare(optimizer, scheduler):
        wrapped["model"], optimizer, scheduler = accelerator.prepare(reward_model.model, optimizer, scheduler,
                                                                     device_placement=[placed] * 3)
        return optimizer, scheduler

    def batch_loss(idx: list[int]) -> torch.Tensor:
        own, scale = shard(idx, accelerator.process_index, accelerator.num_processes)
        chunk = [pairs[i] for i in own]
        # chosen and rejected in one forward: rows [0, n) are chosen, [n, 2n) rejected
        batch = reward_model.encode([p.prompt for p in chunk] * 2, [p.chosen for p in chunk] + [p.rejected for p in chunk])
        rewards = reward_model.forward({k: v.to(reward_model.device) for k, v in batch.items()}, through=wrapped["model"])
        return bradley_terry_loss(*rewards.chunk(2)) * scale

    started = time.perf_counter()
    done = lambda step: sum(len(b) for b in batches[: step + 1])  # noqa: E731 - pairs so far, for the bar
    losses, elapsed = optimise(accelerator, reward_model.model, params, batches, batch_loss, cfg.learning_rate,
                               cfg.weight_decay, cfg.warmup_ratio, "reward model", max_grad_norm=cfg.max_grad_norm,
                               prepare=prepare, on_step=on_step,
                               postfix=lambda step: {"pairs_per_s": f"{done(step) / (time.perf_counter() - started):.2f}"})
    reward_model.model.eval()
    accelerator.free_memory()  # drops the DDP wrapper and the optimizer state
    pairs_done = sum(len(b) for b in batches)
    return RewardTrainStats(len(batches), pairs_done, float(np.mean(losses)), elapsed, losses)


def pairwise_accuracy(reward_model: RewardModel, pairs: Sequence[PreferencePair], batch_size: int = 16,
                      across_processes: bool = False) -> float:
    """Share of pairs where r(chosen) > r(rejected); a tie counts one half. See `reward_scores`."""
    return accuracy_of(*reward_scores(reward_model, pairs, batch_size, across_processes))


def accuracy_of(chosen: np.ndarray, rejected: np.ndarray) -> float:
    """Share of pairs whose chosen reward is higher; a tie counts one half."""
    return float(np.mean((chosen > rejected) + 0.5 * (chosen == rejected)))


def reward_scores(reward_model: RewardModel, pairs: Sequence[PreferencePair], batch_size: int = 16,
                  across_processes: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(r(chosen), r(rejected)) for each pair, no gradients.

    across_processes: under `accelerate launch`, each process scores a contiguous share and every
    process gets all the scores (so every process must call it); by default this process scores all.
    """
    from restlm.distributed import map_across_processes, process_state

    rows = [(p.prompt, p.chosen) for p in pairs] + [(p.prompt, p.rejected) for p in pairs]

    def score(part):
        return reward_model.score([prompt for prompt, _ in part], [response for _, response in part], batch_size)

    if across_processes:
        scores = np.array(map_across_processes(process_state(), rows, lambda part: score(part).tolist()))
    else:
        scores = score(rows)
    return scores[: len(pairs)], scores[len(pairs) :]
