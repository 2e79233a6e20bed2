"""Generation engines behind every generative policy's sampling and greedy decoding, by name
(`generation.engine`); each module here registers one.

  hf           Hugging Face `generate` on the policy's own model (float32 or the policy's dtype)
  torch        restlm's own decode loop on the same model: one prefill per prompt shared by its samples,
               finished rows leave the batch, batches sized by tokens
  ctranslate2  CTranslate2 on a converted copy of the weights (int8 or float32; CPU or CUDA)
  auto         ctranslate2 for models of AUTO_MIN_PARAMETERS or more when it is installed and can
               convert them, else hf (a tiny model generates faster than it converts)
"""
from __future__ import annotations

from restlm.errors import ConfigError
from restlm.generation.base import Engine, Sampling, weights_version
from restlm.generation.registry import ENGINES, register_engine

AUTO_MIN_PARAMETERS = 20_000_000

# each import registers its engine
from restlm.generation import ct2, hf, torch_decode  # noqa: E402,F401  isort: skip


def build_engine(policy, options) -> Engine:
    """The engine `options.engine` names for `policy` ('auto': ctranslate2 when it can run it, else hf)."""
    name = options.engine
    if name == "auto":
        if sum(p.numel() for p in policy.unwrapped.parameters()) < AUTO_MIN_PARAMETERS:
            return ENGINES["hf"](policy, options)
        try:
            engine = ENGINES["ctranslate2"](policy, options)
            engine.sync()  # a model CTranslate2 cannot convert falls back to hf
            return engine
        except ConfigError:
            return ENGINES["hf"](policy, options)
    if name not in ENGINES:
        raise ConfigError("generation.engine", f"must be auto or one of {', '.join(ENGINES)}; got {name!r}")
    engine = ENGINES[name](policy, options)
    if policy.kind not in engine.kinds:
        raise ConfigError("generation.engine", f"{name} does not run {policy.kind} policies")
    return engine


__all__ = ["ENGINES", "Engine", "Sampling", "build_engine", "register_engine", "weights_version"]
