"""PPO as a method: restlm.ppo on the task's training prompts and proxy (the `ppo` section's
settings); the loop, budget and kept step are OnlineMethod's (online.py)."""
from __future__ import annotations

from restlm.methods.base import register_method
from restlm.methods.online import OnlineMethod


@register_method("ppo")
class PPOMethod(OnlineMethod):
    kinds = ("causal",)
    sections = ("ppo", "rest.reward", "rest.normalise_reward")
    section, kl_metric = "ppo", "ppo/kl"
    summary = "PPO: on-policy samples, a value head, a KL penalty to the start policy"

    def trainer(self, policy, reward, prompts, settings):
        from restlm.ppo import PPO

        return PPO(policy, reward, prompts, settings)
