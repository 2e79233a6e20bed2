"""The settings of the runs restlm makes through TRL (SFT, DPO): one dataclass each, every field
with a one-line docstring (also its command-line flag)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from restlm.config.ranges import check_ranges
from restlm.errors import ConfigError


@dataclass
class TrlTrainConfig:
    """What SFT and DPO runs through TRL share."""

    learning_rate: float = 5e-5
    """peak learning rate of AdamW (linear warm-up, then linear decay)"""
    epochs: int = 1
    """passes over the data"""
    batch_size: int = 8
    """rows (prompt-completion pairs, preference pairs) per step"""
    max_length: int = 512
    """tokens of prompt + completion kept (the start)"""
    warmup_ratio: float = 0.1
    """fraction of steps with linear warm-up"""
    weight_decay: float = 0.0
    """AdamW weight decay"""
    seed: int = 0
    """data order"""
    lora: dict | None = None
    """LoRA options (`apply_lora`) for a model given by name; a policy keeps its own"""
    bf16: bool = False
    """bf16 mixed precision (a GPU feature; fp32 on CPU)"""

    SECTION: ClassVar[str] = "trl"  # the key prefix of its ConfigErrors

    def validate(self):
        """Raise ConfigError naming the first bad field; returns self. TRL itself would start on most of
        these and fail later, deep in a traceback."""
        check_ranges(self, self.SECTION, positive=("learning_rate", "epochs", "batch_size", "max_length"),
                     non_negative=("weight_decay",), unit=("warmup_ratio",))
        if self.lora is not None and not isinstance(self.lora, dict):
            raise ConfigError(f"{self.SECTION}.lora", f"must be null or a dict of LoRA options, not {self.lora!r}")
        if self.bf16:
            import torch

            if not (torch.cuda.is_available() and torch.cuda.is_bf16_supported()):
                raise ConfigError(f"{self.SECTION}.bf16", "needs a GPU with bf16; this machine has none")
        return self


@dataclass
class SftConfig(TrlTrainConfig):
    """SFT's settings: those of every TRL run (learning rate 5e-5 by default)."""

    SECTION: ClassVar[str] = "sft"


@dataclass
class DpoConfig(TrlTrainConfig):
    """DPO's settings: those of every TRL run, a smaller learning rate, and DPO's own."""

    learning_rate: float = 5e-6
    """peak learning rate of AdamW (linear warm-up, then linear decay)"""
    beta: float = 0.1
    """strength of the pull toward the reference (higher: stay closer)"""
    loss_type: str = "sigmoid"
    """'sigmoid' is DPO; TRL also has 'ipo', 'hinge', ... (LOSS_TYPES)"""

    SECTION: ClassVar[str] = "dpo"
    # TRL's names (1.x); it would reject another only at the first loss, after loading everything
    LOSS_TYPES: ClassVar[tuple[str, ...]] = (
        "sigmoid", "hinge", "ipo", "exo_pair", "nca_pair", "robust", "bco_pair", "sppo_hard", "aot", "aot_unpaired",
        "apo_zero", "apo_down", "discopop", "sft", "sigmoid_norm")

    def validate(self) -> DpoConfig:
        super().validate()
        if isinstance(self.beta, bool) or not isinstance(self.beta, (int, float)) or not self.beta > 0:
            raise ConfigError("dpo.beta", f"must be a number > 0, not {self.beta!r}")
        if self.loss_type not in self.LOSS_TYPES:
            raise ConfigError("dpo.loss_type", f"unknown loss {self.loss_type!r}; TRL has {', '.join(self.LOSS_TYPES)}")
        return self
