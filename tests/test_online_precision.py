"""`dtype` of the online methods (PPO, GRPO, RLOO): bf16 autocast of the token passes, the weights and the
optimiser float32. In bf16 the scoring pass and the first optimising pass see the same weights through the same
kernels, so the first step's ratio is exactly 1 as in float32; the log-probs stay within bf16's rounding of the
float32 ones; both methods still learn the toy reward."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from restlm.errors import ConfigError
from restlm.ppo import PPO
from restlm.ppo.grpo import GRPO
from test_grpo import PROMPTS, make_policy, share_of_e, tiny_config
from test_ppo import tiny_config as ppo_config


def test_bf16_grpo_first_step_has_ratio_1_and_float32_weights():
    grpo = GRPO(make_policy(), share_of_e, PROMPTS, tiny_config(total_steps=1, dtype="bfloat16"))
    (metrics,) = grpo.train(verbose=False)
    assert metrics["grpo/clip_frac"] == 0.0 and abs(metrics["grpo/kl"]) < 1e-5 and abs(metrics["grpo/loss"]) < 1e-6
    assert all(p.dtype == torch.float32 for p in grpo.policy.model.parameters())


def test_bf16_log_probs_are_float32_ones_within_bf16_rounding():
    policy = make_policy()
    grpo = GRPO(policy, share_of_e, PROMPTS, tiny_config(dtype="bfloat16"))
    samples, _ = grpo._sample(PROMPTS, 0)
    _, batch = next(grpo._batches(samples, list(range(len(samples.outputs)))))
    bf16 = grpo._pass(policy.unwrapped, batch)
    grpo.config.dtype = "float32"
    fp32 = grpo._pass(policy.unwrapped, batch)
    assert bf16["log_probs"].dtype == fp32["log_probs"].dtype == torch.float32
    mask = fp32["mask"]
    difference = (bf16["log_probs"] - fp32["log_probs"])[mask].abs()
    assert 0 < difference.max() < 0.1  # really bf16, and close: 8 bits of mantissa through two tiny layers


@pytest.mark.parametrize("advantage", ["group", "leave_one_out"])
def test_bf16_grpo_and_rloo_learn_the_simple_reward(advantage):
    config = tiny_config(advantage=advantage, scale="none" if advantage == "leave_one_out" else "group",
                         learning_rate=3e-3, total_steps=30, mini_batch_size=8, epochs=2, dtype="bfloat16")
    rewards = [m["grpo/reward_mean"] for m in GRPO(make_policy(), share_of_e, PROMPTS, config).train(verbose=False)]
    assert np.mean(rewards[:5]) < 0.15 and np.mean(rewards[-5:]) > 0.4, rewards


def test_bf16_ppo_keeps_the_ratio_at_1_and_float32_values():
    policy = make_policy()
    ppo = PPO(policy, share_of_e, PROMPTS, ppo_config(learning_rate=1e-12, total_steps=1, mini_batch_size=3,
                                                        dtype="bfloat16"))
    (metrics,) = ppo.train(verbose=False)
    assert metrics["ppo/clipfrac"] == 0.0 and abs(metrics["ppo/approx_kl"]) < 1e-6
    assert all(p.dtype == torch.float32 for p in ppo.value_head.parameters())


def test_an_unknown_dtype_names_its_key():
    with pytest.raises(ConfigError) as error:
        tiny_config(dtype="fp8").validate()
    assert error.value.key == "grpo.dtype" and "'fp8'" in str(error.value)


def test_online_dtype_is_auto_for_new_runs_and_float32_for_runs_recorded_before_the_key():
    from restlm.config import load_config, recorded_config

    assert load_config().grpo.dtype == load_config().ppo.dtype == "auto"
    assert recorded_config({"grpo": {"total_steps": 3}}).grpo.dtype == recorded_config({}).ppo.dtype == "float32"
    assert recorded_config({"ppo": {"dtype": "auto"}}).ppo.dtype == "auto"


def test_a_run_recorded_at_the_old_online_dtype_default_keeps_it():
    from restlm.config import keep_recorded_defaults, load_config

    config = load_config()
    today = {"generation": {"engine": "auto"}, "train": {"dtype": "auto"}}
    assert keep_recorded_defaults(config, {**today, "ppo": {"dtype": "float32"}, "grpo": {}}) == [  # grpo: no key
        "ppo.dtype=float32", "grpo.dtype=float32"] and config.ppo.dtype == config.grpo.dtype == "float32"
    assert keep_recorded_defaults(load_config(), {}) == [  # before any of these keys: as it ran then
        "generation.engine=hf", "train.dtype=float32", "ppo.dtype=float32", "grpo.dtype=float32"]
    chosen = load_config(overrides=["grpo.dtype=bfloat16"])  # a value other than the new default is the user's
    assert keep_recorded_defaults(chosen, {**today, "grpo": {"dtype": "float32"}, "ppo": "bad"}) == []
    assert chosen.grpo.dtype == "bfloat16" and chosen.ppo.dtype == "auto"
