"""ReST with the Improve losses of the ReST paper's Table 1 beside BC: `rest_gold` (GOLD: each kept sample
weighted by its reward) and `rest_bvmpo` (BVMPO: an importance-weighted loss against the Grow policy), the
`rest` section's settings otherwise; each is its own row of a comparison."""
from __future__ import annotations

import dataclasses

from restlm.config import RestConfig
from restlm.methods.base import register_method
from restlm.methods.rest import ReSTMethod


@register_method("rest_gold")
class ReSTGold(ReSTMethod):
    summary = "ReST with the GOLD loss in its Improve steps (kept samples weighted by their reward)"
    fixed = ("rest.loss",)

    def settings(self, config) -> RestConfig:
        return dataclasses.replace(config.rest, loss="gold")


@register_method("rest_bvmpo")
class ReSTBVMPO(ReSTMethod):
    summary = "ReST with the BVMPO loss in its Improve steps (importance-weighted against the Grow policy)"
    fixed = ("rest.loss",)

    def settings(self, config) -> RestConfig:
        return dataclasses.replace(config.rest, loss="bvmpo")
