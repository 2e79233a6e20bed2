"""Methods by name: each module here registers one with `@register_method("name")`; a new method
is one new file (and its import below).

  sft      the start policy: supervised fine-tuning on the task's references (none: the pretrained model)
  rest     ReST (Gulcehre et al. 2023): Grow, then Improve steps at rising thresholds
  rest_em  ReST-EM (Singh et al. 2023): binary reward, each Grow step's Improve from the start
  rest_gold, rest_bvmpo  ReST with the GOLD or BVMPO loss in its Improve steps (the paper's Table 1)
  bc_matched  the references alone for as many optimiser steps as ReST's Improve steps (its control)
  ppo      PPO with a value head and a KL penalty to the start (causal policies)
  grpo     GRPO: K samples per prompt, the group's mean as baseline, no critic (every policy kind)
  rloo     RLOO: the leave-one-out baseline in GRPO's loop (every policy kind)
  dpo      DPO on best-against-worst pairs of the start policy's samples (causal policies)
"""
from __future__ import annotations

from restlm.errors import ConfigError
from restlm.methods.base import METHODS, Method, MethodRun, register_method

# each import registers its method
from restlm.methods import bc_matched, dpo, grpo, ppo, rest, rest_em, rest_losses, rloo, sft  # noqa: E402,F401  isort: skip


# online methods last: without --budget they spend what ReST spent; bc_matched after rest, whose steps it copies
RUN_ORDER = ("sft", "rest", "rest_em", "rest_gold", "rest_bvmpo", "bc_matched", "dpo", "ppo", "grpo", "rloo")


def build_method(name: str, config=None) -> Method:
    """The method called `name`, or the variant of `config.variants` called so (its method, named `name`)."""
    variants = config.variants if config is not None else {}
    if name not in METHODS and name not in variants:
        raise ConfigError("--methods", f"unknown method {name!r}; choose from {', '.join([*METHODS, *variants])} "
                          "(a method of your own: a module in the config's `plugins`; a variant: `variants`)")
    method = METHODS[variants[name]["method"] if name in variants else name]()
    method.name = name
    return method


def in_run_order(names) -> list[str]:
    """The built-in methods in RUN_ORDER, then any others (the user's own) by name."""
    return sorted(names, key=lambda name: (RUN_ORDER.index(name) if name in RUN_ORDER else len(RUN_ORDER), name))


__all__ = ["METHODS", "Method", "MethodRun", "build_method", "in_run_order", "register_method"]
