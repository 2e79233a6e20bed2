"""GRPO as a method: restlm.ppo.grpo on the task's training prompts and proxy (the `grpo` section's
settings), on any policy kind; the loop, budget and kept step are OnlineMethod's (online.py)."""
from __future__ import annotations

from restlm.methods.base import register_method
from restlm.methods.online import OnlineMethod


@register_method("grpo")
class GRPOMethod(OnlineMethod):
    sections = ("grpo", "rest.reward", "rest.normalise_reward")
    section, kl_metric = "grpo", "grpo/kl"
    summary = "GRPO: K samples per prompt, advantages against the group's mean, the clipped ratio, no critic"

    def trainer(self, policy, reward, prompts, settings):
        from restlm.ppo.grpo import GRPO

        return GRPO(policy, reward, prompts, settings)
