"""The settings of a GRPO or RLOO run: one dataclass (the loop's fields in online.py), every field with a one-line docstring."""
from __future__ import annotations

from dataclasses import dataclass

from restlm.config.online import OnlineLoopConfig
from restlm.config.ranges import check_ranges
from restlm.errors import ConfigError

ADVANTAGES = ("group", "leave_one_out")
SCALES = ("group", "batch", "none")
LOSS_TYPES = ("grpo", "bnpo", "dr_grpo")


@dataclass
class GRPOConfig(OnlineLoopConfig):
    learning_rate: float = 1e-6
    """AdamW learning rate (TRL's default; a short run on a small model takes about 1e-5, LoRA about 1e-4)"""
    batch_size: int = 8
    """prompts per step"""
    samples_per_prompt: int = 8
    """the group: outputs sampled per prompt (at least 2; a step has batch_size * samples_per_prompt samples)"""
    mini_batch_size: int = 16
    """samples per optimiser step"""
    epochs: int = 1
    """passes over one step's samples (TRL's num_iterations); after the first optimiser step the ratio is clipped"""
    temperature: float = 1.0
    """sampling temperature; log-probs and ratios are taken at the same temperature"""
    top_p: float = 1.0
    """nucleus of sampling; below 1 the samples come from a truncated policy that the ratio ignores"""
    max_new_tokens: int = 64
    """cap on sampled tokens; an output cut by it gets no EOS"""
    advantage: str = "group"
    """'group': reward minus its group's mean, scaled as `scale` says (GRPO); 'leave_one_out': minus the mean of
    the other K - 1 (RLOO, never scaled)"""
    scale: str = "group"
    """GRPO's divisor of the centred rewards: the group's std ('group'), the batch's ('batch'), or none ('none',
    Dr. GRPO)"""
    loss_type: str = "grpo"
    """how per-token losses are averaged: per sequence then over sequences ('grpo'), over all tokens ('bnpo'),
    or over samples x max_new_tokens ('dr_grpo': no length normalisation)"""
    epsilon_low: float = 0.2
    """the ratio is clipped below at 1 - epsilon_low"""
    epsilon_high: float = 0.2
    """the ratio is clipped above at 1 + epsilon_high (DAPO's clip-higher takes 0.28)"""
    beta: float = 0.0
    """weight of the k3 KL to the start policy in the loss (0, as in current practice; the KL is logged either way)"""
    skip_zero_std: bool = False
    """leave out of the loss the groups whose rewards are all equal (they have advantage 0 and teach nothing)"""

    def validate(self, section: str = "grpo") -> GRPOConfig:
        """Raise ConfigError naming the first bad field; returns self."""
        positive = ("learning_rate", "batch_size", "samples_per_prompt", "mini_batch_size", "epochs", "temperature",
                    "top_p", "max_new_tokens", "max_grad_norm", "total_steps")
        for name in (*positive, "epsilon_low", "epsilon_high", "beta"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{section}.{name}", f"must be a number, not {value!r}")
        for name in ("batch_size", "samples_per_prompt", "mini_batch_size", "epochs", "max_new_tokens", "total_steps"):
            if not isinstance(getattr(self, name), int):
                raise ConfigError(f"{section}.{name}", f"must be an integer, not {getattr(self, name)!r}")
        if self.samples_per_prompt < 2:
            raise ConfigError(f"{section}.samples_per_prompt", "must be at least 2: a group baseline needs two samples "
                              f"of each prompt; got {self.samples_per_prompt}")
        for name, choices in (("advantage", ADVANTAGES), ("scale", SCALES), ("loss_type", LOSS_TYPES)):
            if getattr(self, name) not in choices:
                raise ConfigError(f"{section}.{name}", f"must be one of {', '.join(choices)}; got {getattr(self, name)!r}")
        self.check_loop(section)
        if not isinstance(self.skip_zero_std, bool):
            raise ConfigError(f"{section}.skip_zero_std", f"must be true or false, not {self.skip_zero_std!r}")
        check_ranges(self, section, positive=positive, unit=("top_p", "epsilon_low"),
                     non_negative=("epsilon_high", "beta"))
        return self
