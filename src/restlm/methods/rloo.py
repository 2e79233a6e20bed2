"""RLOO as a method: GRPO's loop and `grpo` section with the leave-one-out baseline (each sample's
reward minus the mean of the other K - 1 of its prompt), never scaled."""
from __future__ import annotations

import dataclasses

from restlm.methods.base import register_method
from restlm.methods.grpo import GRPOMethod


@register_method("rloo")
class RLOOMethod(GRPOMethod):
    summary = "RLOO: K samples per prompt, each against the mean of the other K - 1, no critic"

    def settings(self, config):
        return dataclasses.replace(config.grpo, advantage="leave_one_out", scale="none")
