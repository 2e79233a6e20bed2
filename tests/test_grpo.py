"""GRPO and RLOO on tiny models of every policy kind: the first step's values by hand (ratio 1, KL 0,
the grpo loss of centred advantages 0), learning a simple reward on a causal LM and on a classifier
(labels as actions), a seq2seq step that moves every weight, the zero-std skip, the budget and
keep_best shared with PPO, and the refusals (one line, naming the key)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from accelerate import Accelerator
from tiny_models import tiny_llama, tiny_seq2seq_policy, tiny_tokenizer

from restlm.atomic_files import read_jsonl
from restlm.config.grpo import GRPOConfig
from restlm.data.examples import Example
from restlm.errors import ConfigError, RestlmError
from restlm.policies.causal import CausalLMPolicy
from restlm.policies.classifier import ClassifierPolicy
from restlm.ppo.grpo import GRPO, METRICS

PROMPTS = [Example(uid=str(i), text=t) for i, t in enumerate(["the cat sat", "a dog ran", "the sun is hot",
                                                                "the bird flew over the tree"])]


def make_policy(seed: int = 0) -> CausalLMPolicy:
    tok = tiny_tokenizer()
    return CausalLMPolicy(tiny_llama(len(tok), seed), tok, Accelerator(), prompt_template="Say: {text}",
                          max_new_tokens=8, batch_size=8)


def share_of_e(examples, outputs):
    return [o.count("e") / max(len(o), 1) for o in outputs]


def tiny_config(**changes) -> GRPOConfig:
    values = {"batch_size": 4, "samples_per_prompt": 4, "mini_batch_size": 16, "epochs": 1, "max_new_tokens": 6,
              "learning_rate": 1e-3, "total_steps": 2, "seed": 0, "dtype": "float32"}
    return GRPOConfig(**{**values, **changes})


def test_the_first_step_has_ratio_1_kl_0_and_a_zero_grpo_loss(tmp_path):
    # one minibatch, one pass: the optimiser step is taken at the sampling weights, so nothing is clipped,
    # the policy is the start (KL 0), and the grpo loss of group-centred advantages is -mean(A) = 0
    grpo = GRPO(make_policy(), share_of_e, PROMPTS, tiny_config(total_steps=1))
    before = {n: p.detach().clone() for n, p in grpo.policy.model.named_parameters()}
    (metrics,) = grpo.train(tmp_path / "metrics.jsonl", verbose=False)
    assert set(METRICS) <= set(metrics)
    assert metrics["grpo/clip_frac"] == 0.0 and abs(metrics["grpo/kl"]) < 1e-5 and metrics["grpo/kl_loss"] == 0.0
    assert abs(metrics["grpo/loss"]) < 1e-6
    assert metrics["grpo/trained_samples"] == 16 and metrics["charts/sampled_tokens"] > 0
    assert read_jsonl(tmp_path / "metrics.jsonl") == [metrics]
    moved = [n for n, p in grpo.policy.model.named_parameters() if not torch.equal(p, before[n])]
    assert moved  # a non-zero advantage moves the weights although the loss value is 0


def test_grpo_and_rloo_learn_a_simple_reward():
    # the share of "e" in the output: about 0.05 for the random model; both raise it well above
    for advantage in ("group", "leave_one_out"):
        config = tiny_config(advantage=advantage, scale="none" if advantage == "leave_one_out" else "group",
                             learning_rate=3e-3, total_steps=30, mini_batch_size=8, epochs=2)
        rewards = [m["grpo/reward_mean"] for m in GRPO(make_policy(), share_of_e, PROMPTS, config).train(verbose=False)]
        assert np.mean(rewards[:5]) < 0.15 and np.mean(rewards[-5:]) > 0.4, (advantage, rewards)


def test_later_minibatches_are_off_policy_and_get_clipped():
    # four minibatches, two passes at a large learning rate: the ratio leaves [0.8, 1.2] and is clipped;
    # a beta > 0 adds the k3 KL, which is positive once the policy has moved
    config = tiny_config(mini_batch_size=4, epochs=2, learning_rate=1e-2, total_steps=2, beta=0.1)
    history = GRPO(make_policy(), share_of_e, PROMPTS, config).train(verbose=False)
    assert history[-1]["grpo/clip_frac"] > 0 and history[-1]["grpo/kl_loss"] > 0
    assert history[-1]["grpo/kl"] != 0.0


def test_groups_of_equal_rewards_are_counted_and_can_be_skipped():
    def first_prompt_only(examples, outputs):  # every group but the first prompt's scores all 0
        return [len(o) if e.uid == "0" else 0.0 for e, o in zip(examples, outputs)]

    prompts = PROMPTS[:2]
    kept = GRPO(make_policy(), first_prompt_only, prompts, tiny_config(batch_size=2, total_steps=1))
    (metrics,) = kept.train(verbose=False)
    assert metrics["grpo/frac_reward_zero_std"] == 0.5 and metrics["grpo/trained_samples"] == 8
    skipped = GRPO(make_policy(), first_prompt_only, prompts, tiny_config(batch_size=2, total_steps=1,
                                                                          skip_zero_std=True))
    (metrics,) = skipped.train(verbose=False)
    assert metrics["grpo/frac_reward_zero_std"] == 0.5 and metrics["grpo/trained_samples"] == 4


def test_grpo_trains_a_classifier_with_labels_as_actions(tiny_model_dir, tiny_data):
    # K labels per pair, the `correct` reward: the probability of the gold label rises on the training pairs
    examples = [Example(a, b, label, uid=str(i)) for i, (a, b, label) in enumerate(tiny_data["train_rows"][:16])]
    policy = ClassifierPolicy.from_pretrained(str(tiny_model_dir), Accelerator(), max_length=32)
    gold = [e.label for e in examples]
    before = policy.log_probs(examples, gold).mean()
    config = tiny_config(batch_size=8, samples_per_prompt=4, mini_batch_size=32, learning_rate=1e-2, total_steps=15)
    history = GRPO(policy, "correct", examples, config).train(verbose=False)
    assert all(m["grpo/mean_output_tokens"] == 1.0 for m in history)  # a label is one token
    assert policy.log_probs(examples, gold).mean() > before + 0.1
    assert np.mean([m["grpo/reward_mean"] for m in history[-5:]]) > np.mean([m["grpo/reward_mean"] for m in history[:5]])


def test_one_grpo_step_moves_every_weight_of_a_seq2seq_policy():
    policy = tiny_seq2seq_policy(batch_size=8)
    before = {n: p.detach().clone() for n, p in policy.model.named_parameters()}
    samples = policy.rollouts(PROMPTS[:2], 3, 1.0, 1.0, 6, seed=1)
    batch = policy.rollout_batch(samples)
    # the rollout batch holds the drawn tokens themselves as labels
    assert [row[row != -100].tolist() for row in batch["labels"]] == samples.output_ids
    GRPO(policy, lambda ex, outs: [len(o) for o in outs], PROMPTS, tiny_config(total_steps=1)).train(verbose=False)
    unchanged = [n for n, p in policy.model.named_parameters() if torch.equal(p, before[n])]
    assert unchanged == []


def test_a_token_budget_and_keep_best_behave_as_in_ppo():
    full = GRPO(make_policy(), share_of_e, PROMPTS, tiny_config(total_steps=3)).train(verbose=False)
    budget = full[0]["charts/sampled_tokens"] + 1
    capped = GRPO(make_policy(), share_of_e, PROMPTS, tiny_config(total_steps=3, max_sampled_tokens=budget))
    assert len(capped.train(verbose=False)) == 2
    # keep_best: an evaluation that is highest at the start restores the start weights
    grpo = GRPO(make_policy(), share_of_e, PROMPTS, tiny_config(total_steps=2, eval_every=1, keep_best="score"))
    start = {n: p.detach().clone() for n, p in grpo.policy.unwrapped.named_parameters()}
    scores = iter([1.0, 0.5, 0.2])
    grpo.train(verbose=False, evaluate=lambda policy: {"score": next(scores)})
    assert grpo.best_step == 0
    assert all(torch.equal(p, start[n]) for n, p in grpo.policy.unwrapped.named_parameters())


@pytest.mark.parametrize("change, key", [({"samples_per_prompt": 1}, "grpo.samples_per_prompt"),
                                         ({"loss_type": "dapo"}, "grpo.loss_type"),
                                         ({"advantage": "critic"}, "grpo.advantage"),
                                         ({"scale": "max"}, "grpo.scale"),
                                         ({"epsilon_low": 1.5}, "grpo.epsilon_low"),
                                         ({"batch_size": 2.5}, "grpo.batch_size"),
                                         ({"max_sampled_tokens": 0}, "grpo.max_sampled_tokens"),
                                         ({"max_sampled_tokens": 15}, "grpo.max_sampled_tokens")])
def test_bad_settings_name_their_key(change, key):
    with pytest.raises(ConfigError) as error:
        tiny_config(**change).validate()
    assert error.value.key == key and "\n" not in str(error.value)


def test_a_reward_of_the_wrong_shape_is_refused():
    grpo = GRPO(make_policy(), lambda examples, outputs: [1.0], PROMPTS, tiny_config(total_steps=1))
    with pytest.raises(RestlmError, match="one finite score per sample"):
        grpo.train(verbose=False)


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_the_engine_log_prob_gap_guard(temperature):
    """Rollouts from a CTranslate2 float32 copy: the gap to the policy's own log-probs is about 0 (at T = 1
    read off the sampling pass; at another T from a pass of its own at T = 1), and the engine follows the
    weights after each step."""
    pytest.importorskip("ctranslate2")
    from restlm.config import GenerationConfig

    policy = make_policy()
    policy.use_engine(GenerationConfig(engine="ctranslate2", compute_type="float32"))
    history = GRPO(policy, share_of_e, PROMPTS, tiny_config(temperature=temperature)).train(verbose=False)
    assert max(m["guards/engine_logprob_gap"] for m in history) < 1e-3
    assert policy.engine.syncs == 2


def test_a_lower_is_better_reward_is_maximised_as_its_negative():
    from restlm.rewards.base import Reward

    length = Reward("length", lambda policy, examples, outputs: [len(o) for o in outputs], False)
    grpo = GRPO(make_policy(), length, PROMPTS, tiny_config(total_steps=1))
    (metrics,) = grpo.train(verbose=False)
    assert grpo.reward.higher_is_better and metrics["grpo/reward_mean"] <= 0


def _untimed(history):
    return [{k: v for k, v in m.items() if not k.startswith(("time/", "charts/tokens_per_s", "charts/step_time"))}
            for m in history]


@pytest.mark.parametrize("method", ["grpo", "ppo"])
def test_a_run_that_stops_resumes_from_its_last_saved_step_to_the_same_end(tmp_path, method):
    """A run interrupted at step 3 (state saved after every evaluated step) continues from step 2 in a new
    process-like start (a fresh policy and trainer) and ends with the history and weights of an
    uninterrupted run; the state file is gone at the end."""
    from restlm.ppo import PPO, PPOConfig

    def trainer():
        if method == "grpo":
            return GRPO(make_policy(), share_of_e, PROMPTS, tiny_config(total_steps=4, eval_every=1, mini_batch_size=8,
                                                                       keep_best="score"))
        return PPO(make_policy(), share_of_e, PROMPTS, PPOConfig(batch_size=4, samples_per_prompt=2, mini_batch_size=4,
                                                                 max_new_tokens=6, learning_rate=1e-3, total_steps=4,
                                                                 eval_every=1, keep_best="score", adaptive_kl=True))

    def evaluate(policy):  # a score that depends on the weights
        return {"score": float(sum(p.detach().double().sum() for p in policy.unwrapped.parameters()))}

    whole = trainer()
    expected = whole.train(verbose=False, evaluate=evaluate)
    weights = {n: p.detach().clone() for n, p in whole.policy.unwrapped.named_parameters()}

    state = tmp_path / "state.pt"
    first = trainer()
    step = first.step

    def crash_at_3(prompts, n):
        if n == 3:
            raise KeyboardInterrupt
        return step(prompts, n)

    first.step = crash_at_3
    with pytest.raises(KeyboardInterrupt):
        first.train(verbose=False, evaluate=evaluate, state_path=state)
    assert state.exists()
    again = trainer()
    history = again.train(verbose=False, evaluate=evaluate, state_path=state)
    assert again.resumed_from == 2 and not state.exists()
    assert _untimed(history) == _untimed(expected)
    assert again.best_step == whole.best_step and again.evaluations == whole.evaluations
    assert all(torch.equal(p, weights[n]) for n, p in again.policy.unwrapped.named_parameters())
