"""Direct Preference Optimisation of a causal policy on preference pairs, with TRL's DPOTrainer.

Loss per pair: -log sigmoid(beta * ((log pi(chosen) - log ref(chosen)) - (log pi(rejected) -
log ref(rejected)))), log-probabilities summed over the response tokens (EOS appended).
The reference is a frozen copy of the model as it starts (with LoRA: the model with its
adapters switched off, so no copy), or a model given as `reference`.
Given a CausalLMPolicy, prompts are written as the policy writes them when sampling.
Supported: full fine-tuning or LoRA (merged when saved), fp32 or bf16, one process or several
under `accelerate launch` (`batch_size` is the global batch, split across them), TRL's
other loss types by name. Pairs whose prompt alone fills `max_length` are dropped (by TRL).
"""
from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from restlm.data.examples import Example
from restlm.data.preferences import PreferencePair, read_preferences
from restlm.errors import ConfigError, RestlmError
from restlm.trl_runs import TrlRunStats, TrlTrainConfig, causal_model, finish, trl_arguments


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


def dpo(model, pairs: Sequence[PreferencePair] | str | Path, cfg: DpoConfig | None = None,
        out: str | Path | None = None, reference=None) -> TrlRunStats:
    """Train `model` by DPO on `pairs`; returns the steps, the losses (one per step) and time.

    model: a CausalLMPolicy (trained in place) or a causal LM name/path ('smollm2', ...).
    pairs: PreferencePairs or a JSONL file of {"prompt", "chosen", "rejected"}.
    reference: None (see the module docstring) or a causal LM (model object) to use instead.
    out: where the model (LoRA merged) and tokenizer are saved in HF format, if given.
    """
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    from restlm.policies.lora import is_lora

    cfg = (cfg or DpoConfig()).validate()
    pairs = read_preferences(pairs) if isinstance(pairs, (str, Path)) else list(pairs)
    if not pairs:
        raise RestlmError("DPO needs at least one preference pair")
    model, tokenizer, prompt = causal_model(model, cfg.lora)
    if reference is None and not is_lora(model):
        # TRL would reload the reference from the model's name, which an in-memory model may not have
        reference = copy.deepcopy(model).eval()
    rows = Dataset.from_list([{"prompt": prompt(Example(text=p.prompt)), "chosen": p.chosen, "rejected": p.rejected}
                              for p in pairs])
    args = trl_arguments(DPOConfig, cfg, beta=cfg.beta, loss_type=[cfg.loss_type])
    trainer = DPOTrainer(model=model, ref_model=reference, args=args, train_dataset=rows, processing_class=tokenizer)
    start = time.perf_counter()
    trainer.train()
    return finish(trainer, model, tokenizer, len(pairs) * cfg.epochs, time.perf_counter() - start, out)
