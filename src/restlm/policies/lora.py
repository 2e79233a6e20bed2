"""LoRA for any policy: wrap a model with peft adapters, and checkpoints that load without peft.

A LoRA policy's checkpoint holds the merged model (base + B @ A, plain HF safetensors that
`from_pretrained` loads) and, in `lora_adapter/`, the adapter itself. Resuming reads the
adapter back, so training goes on from the exact LoRA weights rather than from a merged
model with a fresh adapter. The base weights never change under LoRA, so the policy that
resumes must be built on the same base model (as a resumed run is).
"""
from __future__ import annotations

import copy
from pathlib import Path

from restlm.errors import ConfigError

ADAPTER_DIR = "lora_adapter"
LORA_KEYS = {"r", "alpha", "dropout", "target_modules", "modules_to_save"}
# architectures that peft's own table misses; anything else unknown falls back to "all-linear"
_TARGETS = {"marian": ["q_proj", "v_proj"]}


def lora_of_rank(rank: int | None) -> dict | None:
    """The LoRA settings of `model.lora_rank` (and --lora-rank) for every policy kind: alpha twice the rank,
    the usual choice; None (every weight trains) without a rank."""
    return {"r": rank, "alpha": 2 * rank} if rank else None


def apply_lora(model, cfg: dict | None, task_type: str):
    """Wrap `model` in LoRA adapters; only the adapters (and a classifier's head) stay trainable.

    cfg: None (no LoRA: the model comes back unchanged) or a dict with `r` (8), `alpha` (16),
    `dropout` (0.0), `target_modules` (default: q/v attention projections for known
    architectures, else "all-linear"; any peft value works) and `modules_to_save`.
    task_type: "CAUSAL_LM", "SEQ_2_SEQ_LM" or "SEQ_CLS" (peft then trains the new head in full).
    """
    if cfg is None:
        return model
    from peft import LoraConfig, get_peft_model
    from peft.utils.constants import (
        TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as PEFT_TARGETS,
    )

    unknown = set(cfg) - LORA_KEYS
    if unknown:
        raise ConfigError(f"lora.{sorted(unknown)[0]}", f"unknown LoRA option; known: {sorted(LORA_KEYS)}")
    model_type = getattr(model.config, "model_type", "")
    targets = cfg.get("target_modules") or _TARGETS.get(model_type)
    if targets is None and model_type not in PEFT_TARGETS:
        targets = "all-linear"
    config = LoraConfig(task_type=task_type, r=int(cfg.get("r", 8)), lora_alpha=float(cfg.get("alpha", 16)),
                        lora_dropout=float(cfg.get("dropout", 0.0)), target_modules=targets,
                        modules_to_save=cfg.get("modules_to_save"))
    return get_peft_model(model, config)


def is_lora(model) -> bool:
    from peft import PeftModel

    return isinstance(model, PeftModel)


def merged_for_save(model):
    """A plain transformers model with the LoRA weights merged in; `model` itself is left as is.

    A model without LoRA comes back unchanged. The copy costs one model's memory while saving;
    merging in place and unmerging after would not restore the weights bit for bit.
    """
    if not is_lora(model):
        return model
    return copy.deepcopy(model).merge_and_unload()


class LoraCheckpoints:
    """Mixin placed before `Policy`: save/load_weights that also work when the model is LoRA.

    Without LoRA they are `Policy.save` / `Policy.load_weights` unchanged.
    """

    def save(self, path: Path) -> None:
        if not is_lora(self.unwrapped):
            return super().save(path)
        from restlm.atomic_files import replace_folder
        from restlm.policies.base import require_finite_weights

        def write(folder: Path) -> None:
            write_merged(self.unwrapped, self.tokenizer, folder)
            self.unwrapped.save_pretrained(folder / ADAPTER_DIR, safe_serialization=True)

        if self.accelerator.is_main_process:
            require_finite_weights(self.unwrapped, path)
            replace_folder(Path(path), write)
        self.accelerator.wait_for_everyone()

    def load_weights(self, path: Path) -> None:
        if not is_lora(self.unwrapped):
            return super().load_weights(path)
        from peft.utils import set_peft_model_state_dict
        from safetensors.torch import load_file

        adapter = Path(path) / ADAPTER_DIR / "adapter_model.safetensors"
        if not adapter.is_file():
            raise RuntimeError(f"checkpoint {path} has no {ADAPTER_DIR}/: it was not saved by a LoRA policy")
        result = set_peft_model_state_dict(self.unwrapped, load_file(str(adapter)))
        missing = [k for k in result.missing_keys if "lora_" in k or "modules_to_save" in k]
        if result.unexpected_keys or missing:
            raise RuntimeError(f"LoRA checkpoint {path} does not match the model: missing {missing}, "
                               f"unexpected {result.unexpected_keys}")


def save_merged(model, tokenizer, path: Path, extra=None) -> None:
    """Write `model` (LoRA merged in, see `merged_for_save`) and `tokenizer` to `path` in HF format; `extra`
    (folder -> None), when given, writes more files into the same folder before it is renamed into place.

    Written beside `path` and renamed into place (`restlm.atomic_files.replace_folder`), so a killed save
    leaves the old folder whole. For one process; policies save through `LoraCheckpoints.save`,
    which also keeps the adapter. A command's `--out` is refused when not empty before this is reached.
    """
    from restlm.atomic_files import replace_folder
    from restlm.policies.base import require_finite_weights

    require_finite_weights(model, path)
    def write(folder: Path) -> None:
        write_merged(model, tokenizer, folder)
        if extra is not None:
            extra(folder)

    replace_folder(Path(path), write)


def write_merged(model, tokenizer, folder: Path) -> None:
    """`model` (LoRA merged) and `tokenizer` into `folder`."""
    merged_for_save(model).save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
