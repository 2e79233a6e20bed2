"""The settings of a PPO run: one dataclass (the loop's fields in online.py), every field with a one-line docstring."""
from __future__ import annotations

from dataclasses import dataclass

from restlm.config.online import OnlineLoopConfig
from restlm.config.ranges import check_ranges
from restlm.errors import ConfigError


@dataclass
class PPOConfig(OnlineLoopConfig):
    learning_rate: float = 3e-6
    """Adam learning rate of the policy (LoRA adapters take about 1e-4)"""
    value_learning_rate: float = 1e-4
    """Adam learning rate of the value head: it starts from zero and needs larger steps than the policy"""
    batch_size: int = 8
    """prompts per PPO step"""
    samples_per_prompt: int = 1
    """outputs sampled per prompt; a step has batch_size * samples_per_prompt rollouts"""
    mini_batch_size: int = 4
    """rollouts per gradient step"""
    ppo_epochs: int = 4
    """passes over one step's rollouts"""
    temperature: float = 1.0
    """sampling temperature; log-probs, KL and entropy are taken at the same temperature"""
    top_p: float = 1.0
    """nucleus of sampling; below 1 the samples come from a truncated policy that the ratio ignores"""
    max_new_tokens: int = 32
    """cap on sampled tokens; an output cut by it gets no EOS to learn from"""
    clip_range: float = 0.2
    """epsilon of the clipped policy ratio, clip(r, 1 - eps, 1 + eps)"""
    value_clip_range: float = 0.2
    """how far a value may move from its rollout value before its loss is clipped"""
    vf_coef: float = 0.1
    """weight of the value loss in the total loss"""
    gamma: float = 1.0
    """discount over output tokens"""
    lam: float = 0.95
    """GAE lambda: 0 is one-step TD, 1 is the Monte-Carlo return"""
    kl_coef: float = 0.05
    """beta of the per-token penalty beta * (log p - log p_ref); the start value when adaptive"""
    adaptive_kl: bool = False
    """adapt kl_coef towards kl_target (Ziegler et al., 2019)"""
    kl_target: float = 6.0
    """adaptive KL: target KL per sample (summed over its tokens), in nats"""
    kl_horizon: int = 10000
    """adaptive KL: rollouts over which kl_coef moves by at most a factor of exp(0.2)"""
    whiten_rewards: bool = False
    """scale per-token rewards to unit variance (mean kept) before GAE"""

    def validate(self) -> PPOConfig:
        """Raise ConfigError naming the first bad field; returns self."""
        positive = ("learning_rate", "value_learning_rate", "batch_size", "samples_per_prompt", "mini_batch_size",
                    "ppo_epochs", "temperature", "top_p", "max_new_tokens", "clip_range", "value_clip_range",
                    "kl_target", "kl_horizon", "max_grad_norm", "total_steps")
        for name in (*positive, "gamma", "lam", "vf_coef", "kl_coef"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"ppo.{name}", f"must be a number, not {value!r}")
        self.check_loop("ppo")
        check_ranges(self, "ppo", positive=positive, unit=("top_p", "gamma", "lam"), non_negative=("vf_coef", "kl_coef"))
        return self
