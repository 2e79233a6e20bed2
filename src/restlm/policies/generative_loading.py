"""Load a generative policy of the right kind (causal or seq2seq) for a model name."""
from __future__ import annotations

from restlm.policies.base import Policy


def is_seq2seq(name: str) -> bool:
    """True when `name` (a short name, HF id or path) is an encoder-decoder model; False when unknown."""
    if name in ("smollm2",):
        return False
    from transformers import AutoConfig

    try:
        return bool(getattr(AutoConfig.from_pretrained(name), "is_encoder_decoder", False))
    except Exception:  # noqa: BLE001 - the causal loader reports an unloadable model in one line
        return False


def load_generative_policy(name: str, accelerator, lora: dict | None = None, system_prompt: str | None = None,
                           **kwargs) -> Policy:
    """A Seq2SeqPolicy for encoder-decoder models, else a CausalLMPolicy (with `system_prompt`)."""
    if is_seq2seq(name):
        from restlm.policies.seq2seq import Seq2SeqPolicy

        return Seq2SeqPolicy.from_pretrained(name, accelerator, lora=lora, **kwargs)
    from restlm.policies.causal import CausalLMPolicy

    return CausalLMPolicy.from_pretrained(name, accelerator, lora=lora, system_prompt=system_prompt, **kwargs)
