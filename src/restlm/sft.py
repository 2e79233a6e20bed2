"""Supervised fine-tuning of a causal policy on prompt -> completion pairs, with TRL's SFTTrainer.

The loss is on the completion tokens only (TRL's completion-only loss for prompt-completion
data), each completion followed by EOS, as CausalLMPolicy trains and samples its outputs.
Given a CausalLMPolicy, each prompt is written as the policy writes it when sampling (its
prompt template inside the chat template), so SFT trains the format the policy is used in.
Supported: full fine-tuning or LoRA (merged when saved), fp32 or bf16, one process or several
under `accelerate launch` (`batch_size` is the global batch, split across them; see trl_runs).
Not supported: packing, multi-turn conversations. Sequences longer than `max_length` lose their
end (TRL's keep_start).
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from restlm.data.completions import read_completions
from restlm.data.examples import Example
from restlm.errors import RestlmError
from restlm.config.trl import SftConfig
from restlm.trl_runs import TrlRunStats, causal_model, finish, own_forwards, trl_arguments


def sft(model, data: Sequence[Example] | str | Path, cfg: SftConfig | None = None,
        out: str | Path | None = None) -> TrlRunStats:
    """Fine-tune `model` on (prompt, completion) pairs; returns the steps, losses and time.

    model: a CausalLMPolicy (trained in place) or a causal LM name/path ('smollm2', ...).
    data: Examples (text = prompt, target = completion) or a JSONL file of {"prompt", "completion"}.
    out: where the model (LoRA merged) and tokenizer are saved in HF format, if given.
    """
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    cfg = (cfg or SftConfig()).validate()
    examples = read_completions(data) if isinstance(data, (str, Path)) else list(data)
    missing = next((e for e in examples if not isinstance(e.target, str)), None)
    if missing is not None or not examples:
        raise RestlmError(f"SFT needs a completion (Example.target) for every prompt; "
                          f"{'none given' if not examples else repr(missing.uid or missing.text[:40])} has none")
    model, tokenizer, prompt = causal_model(model, cfg.lora)
    rows = Dataset.from_list([{"prompt": prompt(e), "completion": e.target} for e in examples])
    args = trl_arguments(SFTConfig, cfg, completion_only_loss=True)
    with own_forwards(model):  # a trainer's patch of model.forward must not outlive the run (trl_runs)
        trainer = SFTTrainer(model=model, args=args, train_dataset=rows, processing_class=tokenizer)
        start = time.perf_counter()
        trainer.train()
    return finish(trainer, model, tokenizer, len(examples) * cfg.epochs, time.perf_counter() - start, out)
