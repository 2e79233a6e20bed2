"""Generation engines behind every generative policy's sampling and greedy decoding, by name
(`generation.engine`); each module here registers one.

  hf           Hugging Face `generate` on the policy's own model (float32 or the policy's dtype)
  torch        restlm's own decode loop on the same model: one prefill per prompt shared by its samples,
               finished rows leave the batch, batches sized by tokens
  ctranslate2  CTranslate2 on a converted copy of the weights (int8 or float32; CPU or CUDA)
  auto         hf for models under AUTO_MIN_PARAMETERS (a tiny model generates faster than it converts);
               for a causal policy on a CPU with native bf16 (AMX or AVX512-BF16), torch in bf16; else
               ctranslate2 when it is installed and can convert the model, else hf
"""
from __future__ import annotations

import dataclasses

from restlm.errors import ConfigError
from restlm.generation.base import Engine, Sampling, weights_version
from restlm.generation.registry import ENGINES, register_engine

AUTO_MIN_PARAMETERS = 20_000_000

# each import registers its engine
from restlm.generation import ct2, hf, torch_decode  # noqa: E402,F401  isort: skip


def build_engine(policy, options) -> Engine:
    """The engine `options.engine` names for `policy` ('auto': see the module doc)."""
    name = options.engine
    if name == "auto":
        return _auto_engine(policy, options)
    if name not in ENGINES:
        raise ConfigError("generation.engine", f"must be auto or one of {', '.join(ENGINES)}; got {name!r}")
    engine = ENGINES[name](policy, options)
    if policy.kind not in engine.kinds:
        raise ConfigError("generation.engine", f"{name} does not run {policy.kind} policies")
    return engine


def _auto_engine(policy, options) -> Engine:
    """The fastest engine measured for this policy here (benchmarks/results/generation_speed.md)."""
    from restlm.precision import bf16_pays

    if sum(p.numel() for p in policy.unwrapped.parameters()) < AUTO_MIN_PARAMETERS:
        return ENGINES["hf"](policy, options)
    device = policy.accelerator.device.type
    if policy.kind == "causal" and device == "cpu" and bf16_pays("cpu"):
        return ENGINES["torch"](policy, dataclasses.replace(options, dtype="bfloat16"))
    try:
        engine = ENGINES["ctranslate2"](policy, options)
        engine.sync()  # a model CTranslate2 cannot convert falls back to hf
        return engine
    except ConfigError:
        return ENGINES["hf"](policy, options)


__all__ = ["ENGINES", "Engine", "Sampling", "build_engine", "register_engine", "weights_version"]
