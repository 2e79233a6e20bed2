"""PPO: the pure pieces against values computed by hand (KL-shaped rewards, GAE, whitening, the
clipped policy and value losses, the KL controller), the token pass against the policy's own
log_probs, sampling that keeps the tokens, two-step runs on a tiny random Llama (every trainable
parameter changes, KL 0 at step 1, fixed metric names, adaptive KL, LoRA with the base model as
reference), 30 steps raising a simple reward, one-line errors; and one PPO step on SmolLM2 (marked real)."""
from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch
from accelerate import Accelerator
from tiny_models import tiny_llama, tiny_tokenizer
from transformers import AutoModelForCausalLM

from restlm.atomic_files import read_jsonl
from restlm.data.examples import Example
from restlm.errors import ConfigError, RestlmError
from restlm.policies.base import TrainItem
from restlm.policies.causal import CausalLMPolicy
from restlm.ppo import (
    METRICS,
    PPO,
    KLController,
    PPOConfig,
    ValueHead,
    clipped_policy_loss,
    clipped_value_loss,
    gae,
    kl_penalty_rewards,
    masked_mean,
    rollout_batch,
    token_outputs,
    whiten,
)

PROMPTS = [Example(text, uid=str(i)) for i, text in enumerate(["the cat sat", "a dog ran in the park", "Yes",
                                                                "the bird flew over the tree"])]


def t(*rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


def make_policy(seed: int = 0) -> CausalLMPolicy:
    tok = tiny_tokenizer()
    return CausalLMPolicy(tiny_llama(len(tok), seed), tok, Accelerator(), prompt_template="Say: {text}",
                          max_new_tokens=8, batch_size=4)


def length_reward(examples, outputs):
    """A plain function reward: longer outputs score higher."""
    return [len(o) / 10 for o in outputs]


def tiny_config(**changes) -> PPOConfig:
    values = {"batch_size": 4, "samples_per_prompt": 2, "mini_batch_size": 4, "ppo_epochs": 2, "max_new_tokens": 8,
              "learning_rate": 1e-3, "total_steps": 2, "seed": 0, "dtype": "float32"}
    return PPOConfig(**{**values, **changes})


# ---------------------------------------------------------------- the pure pieces, by hand
def test_kl_penalty_rewards_by_hand():
    mask = t([0, 1, 1, 0], [0, 0, 0, 1])
    log_probs = t([5, -1, -2, 5], [0, 0, 0, -0.3])
    ref = t([0, -1.5, -1, 0], [0, 0, 0, -0.2])
    rewards, kl = kl_penalty_rewards(t(1.0, 2.0), log_probs, ref, mask, kl_coef=0.1)
    # row 0: kl (0.5, -1) on its two tokens, the score at the last; row 1: one token, kl -0.1
    torch.testing.assert_close(kl, t([0, 0.5, -1, 0], [0, 0, 0, -0.1]))
    torch.testing.assert_close(rewards, t([0, -0.05, 0.1 + 1.0, 0], [0, 0, 0, 0.01 + 2.0]))


def test_gae_by_hand():
    # one prompt position, three output tokens, one pad; off-mask values must not leak in
    mask = t([0, 1, 1, 1, 0])
    advantages, returns = gae(t([0, 0, 0, 1, 0]), t([9, 0.5, 0.2, 0.1, 7]), mask, gamma=1.0, lam=0.5)
    # t=3: 1 - 0.1 = 0.9; t=2: (0 + 0.1 - 0.2) + 0.5 * 0.9 = 0.35; t=1: (0.2 - 0.5) + 0.5 * 0.35 = -0.125
    torch.testing.assert_close(advantages, t([0, -0.125, 0.35, 0.9, 0]))
    torch.testing.assert_close(returns, t([0, 0.375, 0.55, 1.0, 0]))
    # gamma 0.9, lambda 1: the Monte-Carlo return, 0.9 * 2 = 1.8 at t=0
    advantages, returns = gae(t([0, 2]), t([1, 1]), t([1, 1]), gamma=0.9, lam=1.0)
    torch.testing.assert_close(advantages, t([0.8, 1.0]))
    torch.testing.assert_close(returns, t([1.8, 2.0]))


def test_whiten_by_hand():
    values, mask = t([1, 2, 3, 100]), t([1, 1, 1, 0])
    s = math.sqrt(2 / 3)  # population std of 1, 2, 3
    torch.testing.assert_close(whiten(values, mask), t([-1 / s, 0, 1 / s, 0]))
    torch.testing.assert_close(whiten(values, mask, shift_mean=False), t([2 - 1 / s, 2, 2 + 1 / s, 0]))
    assert masked_mean(t([1, float("inf")]), t([1, 0])).item() == 1.0


def test_clipped_policy_loss_by_hand():
    # ratios 1, 1.5, 0.5 with advantages 1, 1, -1 and eps 0.2
    log_probs = torch.tensor([0.0, math.log(1.5), math.log(0.5)], requires_grad=True)
    loss, clipfrac, approx_kl = clipped_policy_loss(log_probs, torch.zeros(3), t(1, 1, -1), torch.ones(3), 0.2)
    # max(-A r, -A clip(r)): max(-1, -1), max(-1.5, -1.2), max(0.5, 0.8)
    assert loss.item() == pytest.approx((-1 - 1.2 + 0.8) / 3)
    assert clipfrac.item() == pytest.approx(2 / 3)
    assert approx_kl.item() == pytest.approx((0 + (0.5 - math.log(1.5)) + (-0.5 + math.log(2))) / 3)
    loss.backward()
    # only the unclipped token has a gradient: -A r / 3
    torch.testing.assert_close(log_probs.grad, t(-1 / 3, 0, 0))


def test_clipped_value_loss_by_hand():
    values, old, returns = t(1.0, 0.0, 0.6), t(0.5, 0.5, 0.5), t(2.0, 0.0, 1.0)
    loss, clipfrac = clipped_value_loss(values, old, returns, torch.ones(3), clip_range=0.2)
    # clipped values 0.7, 0.3, 0.6: errors max(1, 1.69), max(0, 0.09), max(0.16, 0.16)
    assert loss.item() == pytest.approx(0.5 * (1.69 + 0.09 + 0.16) / 3)
    assert clipfrac.item() == pytest.approx(2 / 3)


def test_kl_controller_by_hand():
    fixed = KLController(0.2)
    assert fixed.update(100.0, 256) == 0.2
    adaptive = KLController(0.2, target=6.0, horizon=10000)
    assert adaptive.update(9.0, 256) == pytest.approx(0.2 * (1 + 0.2 * 256 / 10000))  # error 0.5 clipped to 0.2
    assert adaptive.update(3.0, 100) == pytest.approx(0.201024 * (1 - 0.2 * 100 / 10000))  # -0.5 clipped to -0.2
    assert adaptive.update(6.6, 1000) == pytest.approx(0.201024 * 0.998 * (1 + 0.1 * 1000 / 10000))


def test_rollout_batch_by_hand():
    batch = rollout_batch([[1, 2, 3], [4]], [[7, 8], [9, 10, 11]], pad_id=0)
    assert batch["input_ids"].tolist() == [[1, 2, 3, 7, 8], [4, 9, 10, 11, 0]]
    assert batch["labels"].tolist() == [[-100, -100, -100, 7, 8], [-100, 9, 10, 11, -100]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]]


# ---------------------------------------------------------------- the token pass and sampling
def test_token_outputs_agree_with_the_policy_log_probs():
    policy = make_policy()
    outputs = ["the cat", "a dog ran", "", "Yes"]
    batch = policy.collate([TrainItem(e, o) for e, o in zip(PROMPTS, outputs)])
    with torch.no_grad():
        out = token_outputs(policy.unwrapped, batch, 1.0, ValueHead(policy.unwrapped.config.hidden_size))
    summed = torch.where(out["mask"], out["log_probs"], torch.zeros(())).sum(-1)
    np.testing.assert_allclose(summed.numpy(), policy.log_probs(PROMPTS, outputs), rtol=1e-5, atol=1e-4)
    assert out["mask"].sum(-1).tolist() == policy.token_counts(batch).tolist()
    assert out["values"].shape == out["mask"].shape and not out["values"].any()  # the head starts at 0
    # entropy of each position's softmax, computed apart
    with torch.no_grad():
        logits = policy.unwrapped(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
    expected = torch.distributions.Categorical(logits=logits / 2.0).entropy()
    with torch.no_grad():
        hot = token_outputs(policy.unwrapped, batch, 2.0)
    torch.testing.assert_close(hot["entropy"], expected * out["mask"], rtol=1e-5, atol=1e-5)  # 0 off the output


def test_generate_keeps_the_tokens_and_samples_like_policy_sample():
    policy = make_policy()
    samples = policy.rollouts(PROMPTS, k=3, temperature=1.0, top_p=1.0, max_new_tokens=8, seed=5)
    assert len(samples.outputs) == 12 and samples.examples == [e for e in PROMPTS for _ in range(3)]
    eos = set(policy.eos_ids)
    for output in samples.output_ids:
        assert 1 <= len(output) <= 8 and (output[-1] in eos or len(output) == 8)
        assert not eos & set(output[:-1])
    # one prompt is one batch in both: the same draws and the same strings as policy.sample
    alone = policy.rollouts(PROMPTS[:1], k=3, temperature=1.0, top_p=1.0, max_new_tokens=8, seed=5)
    assert alone.outputs == policy.sample(PROMPTS[:1], k=3, temperature=1.0, seed=5, max_new_tokens=8)[0]
    assert sum(map(len, alone.output_ids)) == policy.last_generated_tokens


# ---------------------------------------------------------------- runs on a tiny model
def test_two_steps_change_every_parameter_with_kl_0_at_step_1(tmp_path):
    policy = make_policy()
    start = {n: p.detach().clone() for n, p in policy.model.named_parameters()}
    ppo = PPO(policy, length_reward, PROMPTS, tiny_config(adaptive_kl=True, kl_horizon=100, whiten_rewards=True))
    history = ppo.train(tmp_path / "metrics.jsonl", verbose=False)
    assert [set(m) for m in history] == [set(METRICS)] * 2
    assert read_jsonl(tmp_path / "metrics.jsonl") == history
    first, second = history
    assert first["ppo/kl"] == 0.0 and first["ppo/mean_non_score_reward"] == 0.0  # policy == reference
    assert second["ppo/kl"] != 0.0
    # adaptive KL after a KL of 0: error clipped to -0.2, over 8 rollouts of a 100 horizon
    assert second["ppo/kl_coef"] == pytest.approx(0.05 * (1 - 0.2 * 8 / 100))
    assert first["charts/sampled_tokens"] > 0
    assert second["charts/sampled_tokens"] - first["charts/sampled_tokens"] == pytest.approx(
        second["charts/tokens_per_s"] * second["charts/step_time_s"])
    assert first["ppo/mean_output_tokens"] * 8 == first["charts/sampled_tokens"]
    unchanged = [n for n, p in policy.model.named_parameters() if torch.equal(p, start[n])]
    assert unchanged == []
    assert all(p.abs().sum() > 0 for p in ppo.value_head.parameters())
    # the reference is the start
    assert all(torch.equal(p, start[n]) for n, p in ppo.reference.named_parameters())


def test_ppo_learns_a_simple_reward():
    # the share of "e" in the output: 0.05 for the random model; PPO without a KL penalty raises it
    policy = make_policy()
    policy.batch_size = 8

    def share_of_e(examples, outputs):
        return [o.count("e") / max(len(o), 1) for o in outputs]

    config = tiny_config(samples_per_prompt=4, mini_batch_size=8, max_new_tokens=6, learning_rate=3e-3, kl_coef=0.0,
                         total_steps=30)
    rewards = [m["ppo/mean_reward"] for m in PPO(policy, share_of_e, PROMPTS, config).train(verbose=False)]
    assert np.mean(rewards[:5]) < 0.1 and np.mean(rewards[-5:]) > 0.4


def test_a_near_zero_learning_rate_keeps_the_ratio_at_1():
    # the rollout pass and the minibatch pass see the same tokens: no clipping, no KL between them
    ppo = PPO(make_policy(), length_reward, PROMPTS, tiny_config(learning_rate=1e-12, total_steps=1, mini_batch_size=3))
    (metrics,) = ppo.train(verbose=False)
    assert metrics["ppo/clipfrac"] == 0.0 and abs(metrics["ppo/approx_kl"]) < 1e-6


def test_a_token_budget_stops_at_the_step_that_reaches_it():
    full = PPO(make_policy(), length_reward, PROMPTS, tiny_config(total_steps=3)).train(verbose=False)
    budget = full[0]["charts/sampled_tokens"] + 1  # reached during step 2
    capped = PPO(make_policy(), length_reward, PROMPTS, tiny_config(total_steps=3, max_sampled_tokens=budget))
    history = capped.train(verbose=False)
    assert [m["charts/step"] for m in history] == [1, 2]
    assert history[-1]["charts/sampled_tokens"] == full[1]["charts/sampled_tokens"] >= budget
    with pytest.raises(ConfigError, match="ppo.max_sampled_tokens"):
        PPOConfig(max_sampled_tokens=0).validate()


def test_evaluations_run_at_the_start_every_n_steps_and_at_the_end():
    calls = []

    def evaluate(policy):
        calls.append(1)
        return {"dev": float(len(calls))}

    ppo = PPO(make_policy(), length_reward, PROMPTS, tiny_config(total_steps=5, eval_every=2))
    history = ppo.train(verbose=False, evaluate=evaluate)
    assert [e["step"] for e in ppo.evaluations] == [0, 2, 4, 5]
    assert [e["dev"] for e in ppo.evaluations] == [1.0, 2.0, 3.0, 4.0]
    assert ppo.evaluations[0]["sampled_tokens"] == 0 < ppo.evaluations[1]["sampled_tokens"]
    assert [m.get("eval/dev") for m in history] == [None, 2.0, None, 3.0, 4.0]
    assert ppo.best_step is None  # no keep_best: the last step is the result


def test_keep_best_restores_the_weights_of_the_best_evaluation():
    policy = make_policy()
    start = {n: p.detach().clone() for n, p in policy.unwrapped.named_parameters()}
    scores = iter([0.9, 0.5, 0.1])  # the start is best: train must end with the start's weights
    ppo = PPO(policy, length_reward, PROMPTS, tiny_config(total_steps=2, eval_every=1, keep_best="dev"))
    ppo.train(verbose=False, evaluate=lambda p: {"dev": next(scores)})
    assert ppo.best_step == 0
    for name, value in policy.unwrapped.named_parameters():
        torch.testing.assert_close(value, start[name], rtol=0, atol=0)
    scores = iter([0.1, 0.9, 0.5])  # step 1 is best
    ppo = PPO(policy, length_reward, PROMPTS, tiny_config(total_steps=2, eval_every=1, keep_best="dev"))
    snapshot = {}
    ppo.train(verbose=False, evaluate=lambda p: snapshot.setdefault(len(snapshot), {
        n: v.detach().clone() for n, v in p.unwrapped.named_parameters()}) and {"dev": next(scores)})
    assert ppo.best_step == 1
    for name, value in policy.unwrapped.named_parameters():
        torch.testing.assert_close(value, snapshot[1][name], rtol=0, atol=0)
    with pytest.raises(ConfigError, match="ppo.keep_best"):
        PPO(make_policy(), length_reward, PROMPTS, tiny_config(total_steps=1, keep_best="nope")).train(
            verbose=False, evaluate=lambda p: {"dev": 0.0})


def test_lora_trains_the_adapters_against_the_base_model(tmp_path):
    policy = make_policy()
    ppo = PPO(policy, length_reward, PROMPTS, tiny_config(lora={"r": 4}))
    assert ppo.reference is None  # the base model, adapters off, is the reference
    start = {n: p.detach().clone() for n, p in policy.model.named_parameters()}
    first, second = ppo.train(verbose=False)
    assert first["ppo/kl"] == 0.0 and second["ppo/kl"] != 0.0
    changed = {n for n, p in policy.model.named_parameters() if not torch.equal(p, start[n])}
    trainable = {n for n, p in policy.model.named_parameters() if p.requires_grad}
    assert changed == trainable and trainable and all("lora_" in n for n in trainable)
    ppo.save(tmp_path / "ckpt")
    assert (tmp_path / "ckpt" / "value_head.safetensors").is_file()
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "ckpt").eval()
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids).logits, policy.unwrapped(ids).logits, rtol=1e-5, atol=1e-5)


def test_bad_input_is_a_one_line_error():
    policy = make_policy()
    for config, key in ((PPOConfig(clip_range=0), "ppo.clip_range"), (PPOConfig(lam=1.5), "ppo.lam"),
                        (PPOConfig(kl_coef=-1), "ppo.kl_coef")):
        with pytest.raises(ConfigError, match=key):
            PPO(policy, length_reward, PROMPTS, config)
    with pytest.raises(RestlmError, match="at least one prompt"):
        PPO(policy, length_reward, [], PPOConfig())
    with pytest.raises(RestlmError, match="causal"):
        PPO(type("Classifier", (), {"kind": "classifier"})(), length_reward, PROMPTS, PPOConfig())
    lora_policy = make_policy()
    PPO(lora_policy, length_reward, PROMPTS, PPOConfig(lora={"r": 2}))
    with pytest.raises(ConfigError, match="already has LoRA"):
        PPO(lora_policy, length_reward, PROMPTS, PPOConfig(lora={"r": 2}))
    ppo = PPO(make_policy(), lambda e, o: [float("nan")] * len(o), PROMPTS, tiny_config(total_steps=1))
    with pytest.raises(RestlmError, match="finite score") as info:
        ppo.train(verbose=False)
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------- real model
@pytest.mark.real
def test_one_ppo_step_on_smollm2():
    from restlm.rewards import build_reward

    policy = CausalLMPolicy.from_pretrained("smollm2", Accelerator(), prompt_template="Translate German to English:\n{text}",
                                            batch_size=2)
    prompts = [Example("Ich habe heute keine Zeit.", target="I have no time today.", uid="0"),
               Example("Das Wetter ist schön.", target="The weather is nice.", uid="1")]
    config = PPOConfig(batch_size=2, samples_per_prompt=1, mini_batch_size=2, ppo_epochs=1, max_new_tokens=8,
                       total_steps=1, learning_rate=1e-5)
    started = time.perf_counter()
    (metrics,) = PPO(policy, build_reward("chrf", normalise=True), prompts, config).train(verbose=True)
    wall = time.perf_counter() - started
    print({k: round(v, 4) for k, v in metrics.items()}, f"setup + step: {wall:.1f} s")
    # a 135M model samples through a copy by default (generation.engine=auto): the torch engine's bf16 copy on a
    # CPU with native bf16, else CTranslate2 int8; either way the copy's gap is recorded
    from restlm.precision import bf16_pays

    assert policy.engine.name == ("torch" if bf16_pays("cpu") else "ctranslate2")
    assert set(metrics) == set(METRICS) | {"guards/engine_logprob_gap"}
    # bf16 weights move the mean token log-prob by about 0.02 nats here, int8 ones by 0.15-0.4 (float32 by 1e-5)
    assert metrics["ppo/kl"] == 0.0 and 0 < metrics["guards/engine_logprob_gap"] < 1.0
    assert 0.0 <= metrics["ppo/mean_reward"] <= 1.0 and 0 < metrics["charts/sampled_tokens"] <= 16
    assert np.isfinite(metrics["ppo/policy_loss"]) and np.isfinite(metrics["ppo/value_loss"])


def test_the_engine_log_prob_gap_guard():
    """With a CTranslate2 engine the rollouts come from a converted copy: each step records how far its
    log-probs are from the policy's (float32: the same weights, so about 0; int8: larger, still small);
    the policy's own model records nothing. PPO keeps following the weights it trains (a sync per step)."""
    pytest.importorskip("ctranslate2")
    from restlm.config import GenerationConfig

    gaps = {}
    for compute_type in ("float32", "int8"):
        policy = make_policy()
        policy.use_engine(GenerationConfig(engine="ctranslate2", compute_type=compute_type))
        history = PPO(policy, length_reward, PROMPTS, tiny_config(total_steps=2)).train(verbose=False)
        gaps[compute_type] = [m["guards/engine_logprob_gap"] for m in history]
        assert policy.engine.syncs == 2  # the start, then the weights after step 1
    assert max(gaps["float32"]) < 1e-3
    assert max(gaps["int8"]) < 0.5
    history = PPO(make_policy(), length_reward, PROMPTS, tiny_config(total_steps=1)).train(verbose=False)
    assert "guards/engine_logprob_gap" not in history[0]
