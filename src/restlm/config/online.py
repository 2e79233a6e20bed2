"""The settings every online RL loop shares (PPO, GRPO, RLOO): its length, budget, evaluations, kept step,
LoRA and seed. PPOConfig and GRPOConfig extend it with their own."""
from __future__ import annotations

from dataclasses import dataclass

from restlm.errors import ConfigError


@dataclass
class OnlineLoopConfig:
    max_grad_norm: float = 1.0
    """gradients are clipped to this global norm"""
    lora: dict | None = None
    """None (train every weight) or apply_lora's dict, e.g. {"r": 8}; the reference is then the base model"""
    total_steps: int = 10
    """steps of `train`"""
    max_sampled_tokens: int | None = None
    """stop `train` after the step that brings the sampled tokens to this many (a budget, e.g. ReST's); None: no cap"""
    eval_every: int = 0
    """with an `evaluate` function given to `train`: evaluate before the first step, every this many steps and
    after the last (a method run also saves its state for resume then); 0: only before the first and after the last"""
    keep_best: str | None = None
    """a metric of `evaluate` (higher better, e.g. a held-out proxy reward): `train` ends by restoring the evaluated
    step where it was highest (the start included); None: the last step is the result"""
    seed: int = 0
    """seed of prompt order, sampling and minibatch order"""
    dtype: str = "auto"
    """precision of the token passes (scoring the samples, optimising): 'bfloat16' autocast (the weights and the
    optimiser stay float32), 'float32', or 'auto' (the default: bfloat16 on CPUs with AMX or AVX512-BF16, CUDA
    with bf16; benchmarks/online_speed.py measured GRPO's two passes 1.85x faster than float32 on an AMX CPU)"""

    def check_loop(self, section: str) -> None:
        """ConfigError naming the first bad shared field."""
        for name in ("max_grad_norm", "total_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{section}.{name}", f"must be a number, not {value!r}")
        budget = self.max_sampled_tokens
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int) or budget < 1):
            raise ConfigError(f"{section}.max_sampled_tokens", f"must be null or an integer >= 1, not {budget!r}")
        step = getattr(self, "batch_size", 1) * getattr(self, "samples_per_prompt", 1)
        if budget is not None and isinstance(step, int) and budget < step:
            raise ConfigError(f"{section}.max_sampled_tokens", f"{budget} is less than one step's {step} samples "
                              "(batch_size x samples_per_prompt, one token each at least)")
        if isinstance(self.eval_every, bool) or not isinstance(self.eval_every, int) or self.eval_every < 0:
            raise ConfigError(f"{section}.eval_every", f"must be an integer >= 0, not {self.eval_every!r}")
        if self.keep_best is not None and not isinstance(self.keep_best, str):
            raise ConfigError(f"{section}.keep_best", f"must be null or a metric name, not {self.keep_best!r}")
        if self.dtype not in ("auto", "float32", "bfloat16"):
            raise ConfigError(f"{section}.dtype", f"must be 'auto', 'float32' or 'bfloat16', not {self.dtype!r}")
        if self.lora is not None and not isinstance(self.lora, dict):
            raise ConfigError(f"{section}.lora", f"must be null or a dict of LoRA options, not {self.lora!r}")
