"""The settings of a PPO run: one dataclass, every field with a one-line docstring."""
from __future__ import annotations

from dataclasses import dataclass

from restlm.config.ranges import check_ranges
from restlm.errors import ConfigError


@dataclass
class PPOConfig:
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
    max_grad_norm: float = 1.0
    """gradients are clipped to this global norm"""
    lora: dict | None = None
    """None (train every weight) or apply_lora's dict, e.g. {"r": 8}; the reference is then the base model"""
    total_steps: int = 10
    """PPO steps of `train`"""
    max_sampled_tokens: int | None = None
    """stop `train` after the step that brings the sampled tokens to this many (a budget, e.g. ReST's); None: no cap"""
    eval_every: int = 0
    """with an `evaluate` function given to `train`: evaluate before the first step, every this many steps and
    after the last; 0: only before the first and after the last"""
    keep_best: str | None = None
    """a metric of `evaluate` (higher better, e.g. a held-out proxy reward): `train` ends by restoring the evaluated
    step where it was highest (the start included); None: the last step is the result"""
    seed: int = 0
    """seed of prompt order, sampling, minibatch order and the value head"""

    def validate(self) -> PPOConfig:
        """Raise ConfigError naming the first bad field; returns self."""
        positive = ("learning_rate", "value_learning_rate", "batch_size", "samples_per_prompt", "mini_batch_size",
                    "ppo_epochs", "temperature", "top_p", "max_new_tokens", "clip_range", "value_clip_range",
                    "kl_target", "kl_horizon", "max_grad_norm", "total_steps")
        for name in (*positive, "gamma", "lam", "vf_coef", "kl_coef"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"ppo.{name}", f"must be a number, not {value!r}")
        budget = self.max_sampled_tokens
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int) or budget < 1):
            raise ConfigError("ppo.max_sampled_tokens", f"must be null or an integer >= 1, not {budget!r}")
        if isinstance(self.eval_every, bool) or not isinstance(self.eval_every, int) or self.eval_every < 0:
            raise ConfigError("ppo.eval_every", f"must be an integer >= 0, not {self.eval_every!r}")
        if self.keep_best is not None and not isinstance(self.keep_best, str):
            raise ConfigError("ppo.keep_best", f"must be null or a metric name, not {self.keep_best!r}")
        if self.lora is not None and not isinstance(self.lora, dict):
            raise ConfigError("ppo.lora", f"must be null or a dict of LoRA options, not {self.lora!r}")
        check_ranges(self, "ppo", positive=positive, unit=("top_p", "gamma", "lam"), non_negative=("vf_coef", "kl_coef"))
        return self
