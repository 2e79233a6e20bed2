"""What SFT and DPO through TRL share: the model to train (a policy's, or one loaded by name),
TRL's common arguments, the loss curve and the saved folder."""
from __future__ import annotations

import math
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch

from restlm.config.trl import TrlTrainConfig  # noqa: F401 (its home is restlm.config)
from restlm.data.examples import Example
from restlm.errors import ConfigError, NonFiniteError


@dataclass
class TrlRunStats:
    """What a TRL run did: optimizer steps, rows trained on (with repeats), the logged losses."""

    steps: int
    rows: int
    losses: list[float]
    wall_time_s: float
    saved_to: str | None = None
    log_history: list[dict] = field(default_factory=list, repr=False)

    @property
    def rows_per_s(self) -> float:
        return self.rows / max(self.wall_time_s, 1e-9)


def causal_model(model, lora: dict | None) -> tuple[object, object, Callable[[Example], str]]:
    """(model, tokenizer, prompt writer) from a CausalLMPolicy or a causal LM name/path.

    A policy's model is trained in place and its prompts are written as the policy writes
    them when it samples (template, chat template); a name is loaded with `load_causal_lm`
    and its prompts are the example texts as they are. `lora` wraps a loaded model only:
    a policy keeps the LoRA it was built with.
    """
    from restlm.policies.base import Policy
    from restlm.policies.causal import CausalLMPolicy
    from restlm.policies.lora import apply_lora

    if isinstance(model, Policy) and not isinstance(model, CausalLMPolicy):
        raise TypeError(f"SFT and DPO through TRL take a CausalLMPolicy or a causal LM name, not a {model.kind} policy")
    if isinstance(model, CausalLMPolicy):
        if lora is not None:
            raise ValueError("lora= applies to a model given by name; build the policy with lora= instead")
        return model.unwrapped, model.tokenizer, model.prompt
    from restlm.causal_lm import load_causal_lm

    loaded, tokenizer = load_causal_lm(str(model))
    return apply_lora(loaded, lora, "CAUSAL_LM"), tokenizer, lambda example: example.text


@contextmanager
def own_forwards(*models):
    """Put back each submodule's `forward` as it was once a TRL trainer is done with `model`.

    TRL's DPOTrainer patches `model.forward` in place (its fused LM head: a closure over this very model's
    original forward; accelerate's mixed precision wraps it alike). The patch outlives the trainer, and a copy of
    the model made later (a bf16 generation copy, PPO's and GRPO's frozen reference) would run the ORIGINAL
    model through it: PPO after DPO in one comparison had a KL penalty of 0 to a reference that was the policy."""
    before = {module: {name: module.__dict__[name] for name in _PATCHED if name in module.__dict__}
              for model in models if model is not None for module in model.modules()}
    try:
        yield
    finally:
        for module, kept in before.items():
            for name in _PATCHED:
                if name in kept:
                    module.__dict__[name] = kept[name]
                else:
                    module.__dict__.pop(name, None)


_PATCHED = ("forward", "_original_forward")


def trl_arguments(config_class, cfg, **extra):
    """A TRL config from ours: fp32, no checkpoints or reports, a loss logged every step.

    `cfg.batch_size` is the global batch: under `accelerate launch` each of N processes takes
    batch_size / N rows of it (so N processes follow the loss curve of one); ConfigError when
    it does not divide evenly.
    """
    from restlm.distributed import process_state

    processes = process_state().num_processes
    if cfg.batch_size % processes:
        raise ConfigError(f"{cfg.SECTION}.batch_size",
                          f"{cfg.batch_size} rows per step do not split evenly across {processes} processes")
    return config_class(
        output_dir=tempfile.mkdtemp(prefix="restlm-trl-"), num_train_epochs=cfg.epochs,
        per_device_train_batch_size=cfg.batch_size // processes, learning_rate=cfg.learning_rate,
        lr_scheduler_type="linear",
        warmup_steps=cfg.warmup_ratio, weight_decay=cfg.weight_decay, seed=cfg.seed, data_seed=cfg.seed,
        max_length=cfg.max_length, logging_steps=1, save_strategy="no", report_to="none", disable_tqdm=True,
        # TRL defaults to bf16 and gradient checkpointing (GPU memory savers); on a CPU both cost time
        bf16=cfg.bf16, gradient_checkpointing=False, dataloader_pin_memory=torch.cuda.is_available(), **extra)


def finish(trainer, model, tokenizer, rows: int, wall_time_s: float, out: str | Path | None) -> TrlRunStats:
    """Stats of a finished trainer; with `out`, the model (LoRA merged) and tokenizer saved there
    (by the main process; the others wait)."""
    import shutil

    from restlm.policies.base import require_finite_weights
    from restlm.policies.lora import save_merged

    history = list(trainer.state.log_history)
    shutil.rmtree(trainer.args.output_dir, ignore_errors=True)
    losses = [h["loss"] for h in history if "loss" in h]
    bad = next((i for i, loss in enumerate(losses) if not math.isfinite(loss)), None)
    if bad is not None:
        raise NonFiniteError(f"the training loss is {losses[bad]} at step {bad + 1} of {len(losses)}; "
                             "nothing was saved (lower --learning-rate)")
    require_finite_weights(model, "the trained model")  # before anything is written: --out stays unmade
    if out is not None:
        if trainer.accelerator.is_main_process:
            save_merged(model, tokenizer, Path(out))
        trainer.accelerator.wait_for_everyone()
    model.eval()
    return TrlRunStats(trainer.state.global_step, rows, losses, wall_time_s,
                       str(out) if out is not None else None, history)
