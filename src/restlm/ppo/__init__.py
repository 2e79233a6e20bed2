"""PPO for causal language models: RLHF with a per-token KL penalty to a frozen reference.

Schulman et al. (2017), "Proximal Policy Optimization Algorithms", in the language-model setting
of Ziegler et al. (2019), "Fine-Tuning Language Models from Human Preferences": the reward of a
sample comes at its last token, every output token pays kl_coef * (log p - log p_ref),
advantages come from GAE over the output tokens, and kl_coef may adapt towards a target KL.

  (its settings, PPOConfig, are in restlm/config/ppo.py with every other config)
  objectives.py  the pure pieces: KL-shaped rewards, GAE, whitening, the clipped losses, the KL controller
  online.py      the loop every online method shares: prompt order, budget, evaluations, keep_best, reference
  algorithm.py   PPO: the value head, the token pass and its step (generate, score, advantages, optimise)
  group_objectives.py, grpo.py   GRPO, Dr. GRPO and RLOO: group advantages, the clipped group loss, the step
  report.py      report.md of a run: proxy, gold, KL and entropy per evaluated step, the proxy-up-gold-down flag

    from restlm.ppo import PPO, PPOConfig
    history = PPO(policy, "chrf", prompts, PPOConfig(total_steps=20)).train("metrics.jsonl")
"""
from restlm.ppo.algorithm import METRICS, PPO, ValueHead, rollout_batch, token_outputs
from restlm.config.grpo import GRPOConfig
from restlm.config.ppo import PPOConfig
from restlm.ppo.grpo import GRPO
from restlm.ppo.objectives import (
    KLController,
    clipped_policy_loss,
    clipped_value_loss,
    gae,
    kl_penalty_rewards,
    masked_mean,
    whiten,
)

__all__ = ["GRPO", "GRPOConfig", "METRICS", "PPO", "KLController", "PPOConfig", "ValueHead", "clipped_policy_loss", "clipped_value_loss",
           "gae", "kl_penalty_rewards", "masked_mean", "rollout_batch", "token_outputs", "whiten"]
