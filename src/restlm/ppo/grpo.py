"""GRPO and RLOO: critic-free online RL with a group baseline, on any policy that samples and scores
outputs (causal, seq2seq, and a classifier, whose labels are the actions).

Each step: K samples of each of `batch_size` prompts from the current policy (`Policy.rollouts`,
the path PPO samples through), their rewards, advantages against the group (group_objectives.py:
GRPO's mean-centred and scaled, Dr. GRPO's unscaled, RLOO's leave-one-out), then `epochs` passes of
minibatches of the clipped group loss (TRL's grpo / bnpo / dr_grpo forms, checked against TRL 1.16
in tests/test_group_objectives.py), plus beta x the k3 KL to the start policy when beta > 0.

    history = GRPO(policy, "exact_answer", prompts, GRPOConfig(total_steps=20)).train("metrics.jsonl")

The start policy's log-probs are taken every step whatever beta is: `grpo/kl` is a guard, the sampled
estimate (summed over a sample's tokens, averaged over samples) of KL(policy || start) as PPO logs it.
"""
from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence

import numpy as np
import torch
from accelerate.utils import gather_object

from restlm.config.grpo import GRPOConfig
from restlm.data.examples import Example
from restlm.guards import distinct_n
from restlm.policies.base import Samples, token_log_probs
from restlm.ppo.group_objectives import group_advantages, group_policy_loss, leave_one_out_advantages
from restlm.ppo.online import OnlineRL
from restlm.rewards.base import Reward
from restlm.training import require_finite_loss

# every step logs exactly these. grpo/kl: mean over samples of the summed per-token log p - log p_ref at
# sampling time; grpo/kl_loss: the k3 KL of the loss (per token, 0 when beta = 0); grpo/frac_reward_zero_std:
# share of groups whose rewards are all equal; charts/* as PPO counts them
METRICS = (
    "grpo/reward_mean", "grpo/reward_std", "grpo/frac_reward_zero_std", "grpo/advantage_abs_mean",
    "grpo/loss", "grpo/clip_frac", "grpo/kl", "grpo/kl_loss", "grpo/entropy", "grpo/mean_output_tokens",
    "grpo/trained_samples", "guards/distinct_1", "guards/distinct_2",
    "charts/step", "charts/sampled_tokens", "charts/tokens_per_s", "charts/step_time_s",
    "time/generate_s", "time/score_s", "time/optimise_s",
)


class GRPO(OnlineRL):
    """GRPO (Shao et al. 2024), Dr. GRPO (Liu et al. 2025) or RLOO (Ahmadian et al. 2024), as the config's
    `advantage`, `scale` and `loss_type` say, over a list of prompts against a reward.

    One process or several (accelerate): every process gets all of a step's samples and rewards (each
    generates a share), scores a share of them, and trains on its share of every minibatch, whose gradients
    DDP averages; bf16 autocast of the token passes or float32 (`dtype`, `auto` by default), full weights
    or LoRA; a classifier's output is one token (its label), so its
    loss is the ratio of that label's probability. Like PPO's, the ratio uses the full softmax at
    `temperature` even when top_p < 1 truncated the sampling.
    """

    section, multi_process = "grpo", True

    def __init__(self, policy, reward: Reward | str | Callable, prompts: Sequence[Example],
                 config: GRPOConfig | None = None):
        super().__init__(policy, reward, prompts, config or GRPOConfig())
        trainable = [p for p in policy.model.parameters() if p.requires_grad]
        self.params = trainable
        # no weight decay, as TRL's default: the KL (when beta > 0) is what holds the policy near its start
        self.optimizer = torch.optim.AdamW(trainable, lr=self.config.learning_rate, weight_decay=0.0)

    def step(self, prompts: Sequence[Example], step: int) -> dict:
        """One step on these prompts; returns its metrics (names: METRICS)."""
        cfg, clock = self.config, time.perf_counter
        started = clock()
        samples, sampled = self._sample(prompts, step)
        generated = clock()

        scores = self._rewards(samples)
        if cfg.advantage == "leave_one_out":
            advantages = leave_one_out_advantages(scores, cfg.samples_per_prompt)
            _, zero_std = group_advantages(scores, cfg.samples_per_prompt, "none")
        else:
            advantages, zero_std = group_advantages(scores, cfg.samples_per_prompt, cfg.scale)
        old, ref, entropy = self._score(samples)
        gap = self._engine_gap(samples, old)
        scored = clock()

        keep = torch.nonzero(~zero_std).squeeze(-1) if cfg.skip_zero_std else torch.arange(len(samples.outputs))
        stats = self._optimise(samples, keep, advantages, old, ref, step) if len(keep) else {}
        done = clock()
        outputs = [str(o) for o in samples.outputs]
        lengths = [len(o) for o in samples.output_ids]
        return {
            "grpo/reward_mean": scores.mean().item(), "grpo/reward_std": scores.std(unbiased=False).item(),
            "grpo/frac_reward_zero_std": zero_std.float().mean().item(),
            "grpo/advantage_abs_mean": advantages.abs().mean().item(),
            "grpo/loss": stats.get("loss", 0.0), "grpo/clip_frac": stats.get("clip_frac", 0.0),
            "grpo/kl": float(np.mean([(o - r).sum().item() for o, r in zip(old, ref)])),
            "grpo/kl_loss": stats.get("kl", 0.0),
            "grpo/entropy": float(torch.cat(entropy).mean().item()),
            "grpo/mean_output_tokens": float(np.mean(lengths)), "grpo/trained_samples": len(keep),
            "guards/distinct_1": distinct_n(outputs, 1), "guards/distinct_2": distinct_n(outputs, 2),
            **({"guards/engine_logprob_gap": gap} if gap is not None else {}),
            "charts/step": step, "charts/sampled_tokens": self.sampled_tokens,
            "charts/tokens_per_s": sampled / (done - started), "charts/step_time_s": done - started,
            "time/generate_s": generated - started, "time/score_s": scored - generated,
            "time/optimise_s": done - scored,
        }

    def _batches(self, samples: Samples, rows: Sequence[int]):
        """(rows, rollout batch on the device) per chunk of `mini_batch_size` of these rows."""
        size = self.config.mini_batch_size
        for start in range(0, len(rows), size):
            part = [int(i) for i in rows[start : start + size]]
            yield part, self._collate(samples, part)

    def _collate(self, samples: Samples, rows: list[int]) -> dict:
        batch = self.policy.rollout_batch(samples.take(rows))
        return {k: v.to(self.policy.accelerator.device) for k, v in batch.items()}

    def _pass(self, model, batch: dict, temperature: float | None = None) -> dict:
        """The token pass, at the sampling temperature unless another is given."""
        with self.autocast():
            return token_log_probs(*self.policy.rollout_logits(model, batch), temperature or self.config.temperature)

    @torch.no_grad()
    def _score(self, samples: Samples) -> tuple[list, list, list]:
        """Per sample, its tokens' log-probs under the sampling policy and the start policy, and the entropy
        at each of its tokens: 1-D tensors, one value per output token."""
        n = len(samples.outputs)
        share = -(-n // self.processes)  # each process scores a contiguous share; all get every sample's values
        mine = list(range(self.rank * share, min(n, (self.rank + 1) * share)))
        scored = []
        for rows, batch in self._batches(samples, mine):
            now = self._pass(self.policy.unwrapped, batch)
            with self._reference() as reference:
                start = self._pass(reference, batch)
            for j, i in enumerate(rows):
                mask = now["mask"][j]
                scored.append((i, now["log_probs"][j][mask].cpu(), start["log_probs"][j][mask].cpu(),
                               now["entropy"][j][mask].cpu()))
        if self.processes > 1:
            scored = gather_object(scored)
        device = self.policy.accelerator.device
        by_row = {i: values for i, *values in scored}
        return tuple([by_row[i][part].to(device) for i in range(n)] for part in range(3))

    @torch.no_grad()
    def _engine_gap(self, samples: Samples, old: list) -> float | None:
        """Mean |engine - policy| of the per-token mean log-prob (temperature 1) of the samples: how far the
        engine that sampled (int8, another kernel) is from the policy that trains (PPO logs the same guard).
        None when the policy's own model sampled; the losses use the policy's log-probs only."""
        if samples.engine_mean_log_probs is None:
            return None
        rows = range(min(self.config.mini_batch_size, len(samples.outputs)))
        if self.config.temperature == 1.0:
            mine = [float(old[i].mean()) for i in rows]
        else:
            _, batch = next(self._batches(samples, list(rows)))
            out = self._pass(self.policy.unwrapped, batch, temperature=1.0)
            mine = ((out["log_probs"].sum(-1)) / out["mask"].sum(-1).clamp_min(1)).tolist()
        return float(np.mean([abs(samples.engine_mean_log_probs[i] - m) for i, m in zip(rows, mine)]))

    def _optimise(self, samples: Samples, keep: torch.Tensor, advantages: torch.Tensor, old: list, ref: list,
                  step: int) -> dict[str, float]:
        """`epochs` passes over the kept samples in minibatches, one optimiser step each; the mean loss,
        clip fraction and k3 KL."""
        cfg, stats = self.config, defaultdict(list)
        for _ in range(cfg.epochs):
            order = keep[torch.as_tensor(self.minibatch_rng.permutation(len(keep)))].tolist()
            for rows in self._minibatches(order):
                now = self._pass(self.policy.model, self._collate(samples, rows))
                mask = now["mask"]
                loss, parts = group_policy_loss(
                    now["log_probs"], _spread([old[i] for i in rows], mask), advantages[rows].to(mask.device), mask,
                    cfg.epsilon_low, cfg.epsilon_high, cfg.loss_type, samples.max_output_tokens, cfg.beta,
                    _spread([ref[i] for i in rows], mask))
                require_finite_loss(loss, "grpo", step, cfg.total_steps)
                self.optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.params, cfg.max_grad_norm)
                self.optimizer.step()
                stats["loss"].append(loss.item())
                for name, value in parts.items():
                    stats[name].append(value.item())
        return self._means(stats)

    def log_line(self, metrics: dict) -> str:
        name = "rloo" if self.config.advantage == "leave_one_out" else "grpo"
        return (f"[{name} {metrics['charts/step']}/"
                f"{self.config.total_steps}] reward={metrics['grpo/reward_mean']:.4g} kl={metrics['grpo/kl']:.4g} "
                f"zero-std groups={metrics['grpo/frac_reward_zero_std']:.2f} clip={metrics['grpo/clip_frac']:.3g} "
                f"{metrics['charts/step_time_s']:.2f} s/step {metrics['charts/tokens_per_s']:.1f} sampled tok/s")


def _spread(values: list[torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
    """Per-sample 1-D token values laid out on a minibatch's [B, T] mask (0 off it)."""
    out = torch.zeros(mask.shape, dtype=torch.float32, device=mask.device)
    out[mask] = torch.cat(values).to(mask.device)
    return out
