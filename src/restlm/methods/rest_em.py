"""ReST-EM (Singh et al. 2023) as a method: ReST with the `rest_em` preset over the `rest` section
(binary reward at 0.5, each Grow step's Improve from the start, at most 10 samples per input)."""
from __future__ import annotations

import dataclasses

from restlm.config import PRESETS, RestConfig
from restlm.methods.base import register_method
from restlm.methods.rest import ReSTMethod


@register_method("rest_em")
class ReSTEM(ReSTMethod):
    summary = "ReST-EM: binary reward, every Grow step's Improve restarts from the start policy"
    fixed = tuple(f"rest.{key}" for key in PRESETS["rest_em"])

    def settings(self, config) -> RestConfig:
        return dataclasses.replace(config.rest, **PRESETS["rest_em"])
