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
from pathlib import Path

from restlm.data.examples import Example
from restlm.data.preferences import PreferencePair, read_preferences
from restlm.errors import RestlmError
from restlm.config.trl import DpoConfig
from restlm.trl_runs import TrlRunStats, causal_model, finish, own_forwards, trl_arguments


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
    with own_forwards(model, reference):  # TRL's patches of their forwards must not outlive the run
        trainer = DPOTrainer(model=model, ref_model=reference, args=args, train_dataset=rows, processing_class=tokenizer)
        start = time.perf_counter()
        trainer.train()
    return finish(trainer, model, tokenizer, len(pairs) * cfg.epochs, time.perf_counter() - start, out)
