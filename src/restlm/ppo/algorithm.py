"""PPO on a causal LM: the value head, the token pass, then `PPO` (its loop is online.py's OnlineRL),
whose `step` is four numbered steps: generate, score, advantages, optimise."""
from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn

from restlm.config.ppo import PPOConfig
from restlm.data.examples import Example
from restlm.guards import distinct_n
from restlm.policies.base import Samples, token_log_probs
from restlm.policies.causal import causal_forward, rollout_batch  # noqa: F401  (rollout_batch: re-exported by restlm.ppo)
from restlm.ppo.online import OnlineRL
from restlm.ppo.objectives import (
    KLController,
    clipped_policy_loss,
    clipped_value_loss,
    gae,
    kl_penalty_rewards,
    masked_mean,
    whiten,
)
from restlm.rewards.base import Reward
from restlm.training import require_finite_loss

# every step logs exactly these, so runs compare line by line. ppo/kl: mean over samples of the summed
# per-token log p - log p_ref, at sampling time; charts/sampled_tokens: generated tokens (EOS included) so
# far, as ReST's Grow steps count them; charts/tokens_per_s: this step's sampled tokens / its wall time
METRICS = (
    "ppo/mean_reward", "ppo/std_reward", "ppo/kl", "ppo/kl_coef", "ppo/mean_non_score_reward", "ppo/entropy",
    "ppo/policy_loss", "ppo/value_loss", "ppo/clipfrac", "ppo/value_clipfrac", "ppo/approx_kl",
    "ppo/mean_output_tokens", "guards/distinct_1", "guards/distinct_2",
    "charts/step", "charts/sampled_tokens", "charts/tokens_per_s", "charts/step_time_s",
    "time/generate_s", "time/score_s", "time/advantages_s", "time/optimise_s",
)


# ---------------------------------------------------------------- the value head and the token pass
class ValueHead(nn.Module):
    """V(s_t): a scalar linear map of the policy's last hidden state, [B, T, H] -> [B, T].

    A module of its own, so the policy stays a plain causal LM that saves in HF format.
    Zero-initialised: values start at 0 and the value loss sends no gradient into the policy
    until the head has learnt something.
    """

    def __init__(self, hidden_size: int):
        super().__init__()
        self.linear = nn.Linear(hidden_size, 1)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        with torch.autocast(hidden.device.type, enabled=False):  # values in float32 under a bf16 pass too
            return self.linear(hidden.float()).squeeze(-1)


def token_outputs(model, batch: dict, temperature: float = 1.0, value_head: ValueHead | None = None,
                  first: int = 0) -> dict:
    """One forward pass of a causal LM over prompt + output, read at the output tokens (`causal_forward`).

    In: a right-padded causal batch (input_ids, attention_mask, labels with -100 off the output); `first`: the
    first position read (`first_scored_column` of the whole rollout; 0: every position).
    Out: `token_log_probs`'s 'log_probs', 'entropy' and 'mask', and 'values' (None without a head);
    each [B, W - 1 - first], column t scoring token first + t + 1.
    """
    logits, hidden = causal_forward(model, batch, first, hidden=value_head is not None)
    values = value_head(hidden) if value_head is not None else None
    return {**token_log_probs(logits, batch["labels"][:, 1 + first :], temperature), "values": values}


_SEQUENCE_KEYS = ("input_ids", "attention_mask", "labels")  # [B, W]; every other 2-D tensor is per token


def _rows(tensors: dict, rows: torch.Tensor, first: int) -> dict:
    """Some rows of a right-padded batch and of its token tensors ([B, W - 1 - first], from position `first`),
    cut to those rows' own width."""
    width = int(tensors["attention_mask"][rows].sum(-1).max())
    return {key: value[rows, : width if key in _SEQUENCE_KEYS else width - 1 - first]
            for key, value in tensors.items() if isinstance(value, torch.Tensor) and value.dim() == 2}


# ---------------------------------------------------------------- the algorithm
class PPO(OnlineRL):
    """PPO on a causal LM policy with a reward, over a list of prompts (Example.text).

        history = PPO(policy, "chrf", prompts, PPOConfig(total_steps=20)).train("metrics.jsonl")

    `reward`: a Reward, a name (as `build_reward` takes) or a function (examples, outputs) -> scores.
    Supported: CausalLMPolicy (full weights or LoRA), one process or several (each trains on its share of
    every minibatch; the value head's gradients are averaged by hand, DDP averages the policy's), bf16
    autocast of the token passes or float32 (`dtype`, `auto` by default),
    resuming a killed run from its last evaluated step (`train(state_path=...)`). Not supported: seq2seq or
    classifier policies. The loop, evaluations,
    `keep_best` and the reference are OnlineRL's (online.py).
    The value head shares the policy's body (one forward pass for both), so the value loss
    also moves the policy. Approximations: with top_p < 1 the samples come from the nucleus
    while ratios, KL and entropy use the full softmax (at `temperature`); the KL is the sampled
    estimate log p - log p_ref per token, so one step's mean can be negative.
    """

    section, kinds, multi_process = "ppo", ("causal",), True

    def __init__(self, policy, reward: Reward | str | Callable, prompts: Sequence[Example],
                 config: PPOConfig | None = None):
        super().__init__(policy, reward, prompts, config or PPOConfig())
        cfg = self.config
        self.value_head = ValueHead(policy.unwrapped.config.hidden_size).to(policy.accelerator.device)
        trainable = [p for p in policy.model.parameters() if p.requires_grad]
        # no weight decay: the KL penalty is what keeps the policy near the reference
        self.optimizer = torch.optim.Adam([{"params": trainable, "lr": cfg.learning_rate},
                                           {"params": list(self.value_head.parameters()), "lr": cfg.value_learning_rate}])
        self.kl = KLController(cfg.kl_coef, cfg.kl_target if cfg.adaptive_kl else None, cfg.kl_horizon)

    def modules(self) -> dict[str, nn.Module]:
        return {**super().modules(), "value_head": self.value_head}

    def extra_state(self) -> dict:
        return {"kl_coef": self.kl.value}

    def load_extra_state(self, state: dict) -> None:
        self.kl.value = state["kl_coef"]

    def step(self, prompts: Sequence[Example], step: int) -> dict:
        """One PPO step on these prompts; returns its metrics."""
        cfg, clock = self.config, time.perf_counter
        started = clock()
        # step 1. generate: K samples per prompt
        samples, sampled = self._sample(prompts, step)
        generated = clock()

        # step 2. score: the reward of each sample; log p, log p_ref and V of each of its tokens
        device = self.policy.accelerator.device
        scores = self._rewards(samples)
        batch = self.policy.rollout_batch(samples)
        first = self.policy.first_scored(batch)  # every token pass of this step reads from here
        rollout = self._rollout({k: v.to(device) for k, v in batch.items()}, first)
        scores = scores.to(device)
        gap = self._engine_gap(batch, samples, first)
        scored = clock()

        # step 3. advantages: KL-shaped per-token rewards, GAE, whitened advantages
        mask, kl_coef = rollout["mask"], self.kl.value
        rewards, kl = kl_penalty_rewards(scores, rollout["log_probs"], rollout["ref_log_probs"], mask, kl_coef)
        if cfg.whiten_rewards:
            rewards = whiten(rewards, mask, shift_mean=False)
        advantages, returns = gae(rewards, rollout["values"], mask, cfg.gamma, cfg.lam)
        rollout["advantages"], rollout["returns"] = whiten(advantages, mask), returns
        advantaged = clock()

        # step 4. optimise: ppo_epochs passes of minibatches over the rollouts
        losses = self._optimise(rollout, step, first)
        kl_per_sample = kl.sum(-1)
        self.kl.update(kl_per_sample.mean().item(), len(samples.outputs))
        done = clock()
        return {
            "ppo/mean_reward": scores.mean().item(), "ppo/std_reward": scores.std(unbiased=False).item(),
            "ppo/kl": kl_per_sample.mean().item(), "ppo/kl_coef": kl_coef,
            "ppo/mean_non_score_reward": (-kl_coef * kl_per_sample).mean().item(),
            "ppo/entropy": masked_mean(rollout["entropy"], mask).item(), **losses,
            "ppo/mean_output_tokens": mask.sum(-1).float().mean().item(),
            "guards/distinct_1": distinct_n(samples.outputs, 1), "guards/distinct_2": distinct_n(samples.outputs, 2),
            **({"guards/engine_logprob_gap": gap} if gap is not None else {}),
            "charts/step": step, "charts/sampled_tokens": self.sampled_tokens,
            "charts/tokens_per_s": sampled / (done - started), "charts/step_time_s": done - started,
            "time/generate_s": generated - started, "time/score_s": scored - generated,
            "time/advantages_s": advantaged - scored, "time/optimise_s": done - advantaged,
        }

    @torch.no_grad()
    def _engine_gap(self, batch: dict, samples: Samples, first: int) -> float | None:
        """Mean |engine - policy| of the per-token mean log-prob (temperature 1) of the first minibatch's
        samples: how far the engine that sampled (int8, another kernel) is from the policy that trains.
        None when the policy's own model sampled. The losses use the policy's log-probs only."""
        if samples.engine_mean_log_probs is None:
            return None
        rows = torch.arange(min(self.config.mini_batch_size, len(samples.outputs)))
        part = {k: v.to(self.policy.accelerator.device) for k, v in _rows(batch, rows, first).items()}
        out = self._outputs(self.policy.unwrapped, part, 1.0, first)
        mine = (out["log_probs"] * out["mask"]).sum(-1) / out["mask"].sum(-1).clamp_min(1)
        engine = torch.tensor([samples.engine_mean_log_probs[i] for i in rows.tolist()], device=mine.device)
        return (engine - mine).abs().mean().item()

    def _outputs(self, model, part: dict, temperature: float, first: int, value_head: ValueHead | None = None) -> dict:
        """`token_outputs` under the configured precision (`dtype`), read from position `first` on."""
        with self.autocast():
            return token_outputs(model, part, temperature, value_head, first)

    @torch.no_grad()
    def _rollout(self, batch: dict, first: int) -> dict:
        """The batch with, per token, the policy's log-probs, entropy and values and the reference's log-probs."""
        cfg = self.config
        parts = defaultdict(list)
        for start in range(0, len(batch["input_ids"]), cfg.mini_batch_size):
            rows = torch.arange(start, min(start + cfg.mini_batch_size, len(batch["input_ids"])))
            part = _rows(batch, rows, first)
            now = self._outputs(self.policy.unwrapped, part, cfg.temperature, first, self.value_head)
            with self._reference() as reference:
                ref = self._outputs(reference, part, cfg.temperature, first)
            for key, value in (*now.items(), ("ref_log_probs", ref["log_probs"])):
                parts[key].append(value)
        width = batch["input_ids"].shape[1] - 1 - first
        rollout = {k: torch.cat([nn.functional.pad(v, (0, width - v.shape[1])) for v in vs]) for k, vs in parts.items()}
        return {**batch, **rollout}

    def _optimise(self, rollout: dict, step: int, first: int) -> dict[str, float]:
        """ppo_epochs passes over the rollouts in minibatches; returns the mean losses and fractions."""
        cfg, stats = self.config, defaultdict(list)
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        n = len(rollout["input_ids"])
        for _ in range(cfg.ppo_epochs):
            for rows in self._minibatches(self.minibatch_rng.permutation(n).tolist()):
                part = _rows(rollout, torch.as_tensor(rows), first)
                now = self._outputs(self.policy.model, part, cfg.temperature, first, self.value_head)
                policy_loss, clipfrac, approx_kl = clipped_policy_loss(
                    now["log_probs"], part["log_probs"], part["advantages"], part["mask"], cfg.clip_range)
                value_loss, value_clipfrac = clipped_value_loss(
                    now["values"], part["values"], part["returns"], part["mask"], cfg.value_clip_range)
                loss = policy_loss + cfg.vf_coef * value_loss
                require_finite_loss(loss, "ppo", step, cfg.total_steps)
                self.optimizer.zero_grad()
                loss.backward()
                if self.processes > 1:  # DDP averages the policy's gradients; the head is not inside it
                    for p in self.value_head.parameters():
                        p.grad.copy_(self.policy.accelerator.reduce(p.grad, reduction="mean"))
                torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
                self.optimizer.step()
                for name, value in (("policy_loss", policy_loss), ("value_loss", value_loss), ("clipfrac", clipfrac),
                                    ("value_clipfrac", value_clipfrac), ("approx_kl", approx_kl)):
                    stats[f"ppo/{name}"].append(value.item())
        return self._means(stats)

    def save(self, path: str | Path) -> None:
        """The policy in HF format (LoRA merged, see policies/lora.py) and `value_head.safetensors` beside it."""
        from safetensors.torch import save_file

        super().save(path)
        save_file(self.value_head.state_dict(), str(Path(path) / "value_head.safetensors"))

    def log_line(self, metrics: dict) -> str:
        return (f"[ppo {metrics['charts/step']}/{self.config.total_steps}] reward={metrics['ppo/mean_reward']:.4g} "
                f"kl={metrics['ppo/kl']:.4g} entropy={metrics['ppo/entropy']:.4g} "
                f"clipfrac={metrics['ppo/clipfrac']:.3g} {metrics['charts/step_time_s']:.2f} s/step "
                f"{metrics['charts/tokens_per_s']:.1f} sampled tok/s")
