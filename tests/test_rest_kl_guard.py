"""ReST's KL guard on tiny random models: after each Improve step, `kl_to_grow_policy` equals a hand
computation (fresh samples of the current policy scored by it and by the Grow policy); it is 0 when
the Improve step does not move the policy (causal and seq2seq); a run killed between Improve steps
and resumed logs the same values as an uninterrupted one; and a resume that cannot rebuild the
Grow policy leaves the metric out rather than log a wrong number."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from accelerate import Accelerator
from tiny_models import tiny_llama, tiny_seq2seq_policy, tiny_tokenizer

from restlm import run_layout as layout
from restlm.atomic_files import read_jsonl
from restlm.config import RestConfig, TrainConfig
from restlm.data.examples import Example
from restlm.policies.causal import CausalLMPolicy
from restlm.rest import ReST, stage_seed

TRAIN = [Example(text, target=target, uid=str(i)) for i, (text, target) in enumerate([
    ("the cat sat", "cat"), ("a dog ran in the park", "dog"), ("Yes", "yes"), ("the bird flew over the tree", "bird"),
    ("Answer: No", "no"), ("the fish swam", "fish")])]
GUARD_SAMPLES = 3  # fewer than the 5 drawn inputs: the guard takes the first ones


def causal_policy() -> CausalLMPolicy:
    tok = tiny_tokenizer()
    return CausalLMPolicy(tiny_llama(len(tok)), tok, Accelerator(), prompt_template="Translate: {text}",
                          max_new_tokens=8, batch_size=4)


def output_length(examples, outputs) -> list[float]:
    return [float(len(o) % 4) for o in outputs]  # any reward: every sample is kept (threshold 0)


def make_rest(policy, run_dir, evaluate=None, learning_rate: float = 1e-2, grow_steps: int = 1, improve_steps: int = 2,
              keep_checkpoints: str = "best") -> ReST:
    config = RestConfig(grow_steps=grow_steps, improve_steps=improve_steps, samples_per_input=2, sampling="sample",
                        threshold="rising", thresholds=[0.0], original_data="none", improve_learning_rate=learning_rate,
                        guard_samples=GUARD_SAMPLES)
    return ReST(policy, output_length, TRAIN, evaluate or (lambda p: {"dev_accuracy": 0.0}), config,
                TrainConfig(batch_size=4, warmup_ratio=0.0, weight_decay=0.0), run_dir=str(run_dir),
                keep_checkpoints=keep_checkpoints)


def test_kl_equals_a_hand_computation(tmp_path):
    policy, grow_policy = causal_policy(), causal_policy()  # the same random weights: the start is the Grow policy
    records = make_rest(policy, tmp_path / "run", keep_checkpoints="all").run(grow_size=5)
    rows = read_jsonl(tmp_path / "run" / layout.grown_file(layout.grow_stage(layout.STANDALONE, 1)))
    drawn = list(dict.fromkeys(r["index"] for r in rows if r["source"] == "grown"))
    examples = [TRAIN[i] for i in drawn[:GUARD_SAMPLES]]
    for record in records:
        key = layout.improve_stage(layout.STANDALONE, 1, record["I"])
        policy.load_weights(tmp_path / "run" / layout.checkpoint_dir(key))
        samples = policy.sample(examples, k=1, temperature=1.0, seed=stage_seed(stage_seed(0, key), "kl_to_grow_policy"))
        outputs = [s[0] for s in samples]
        # the reference of both Improve steps is the Grow policy, not the step before
        kl = float(np.mean(policy.log_probs(examples, outputs) - grow_policy.log_probs(examples, outputs)))
        assert abs(kl) > 1e-3  # the Improve steps moved the policy
        assert record["kl_to_grow_policy"] == pytest.approx(kl, rel=1e-6, abs=1e-9)
        assert np.isfinite(record["grow_log_prob_gain"]) and record["token_entropy"] > 0  # the older guards stay


@pytest.mark.parametrize("make_policy", [causal_policy, tiny_seq2seq_policy], ids=["causal", "seq2seq"])
def test_kl_is_zero_when_the_policy_does_not_move(tmp_path, make_policy):
    records = make_rest(make_policy(), tmp_path / "run", learning_rate=0.0, grow_steps=2, improve_steps=1).run(grow_size=5)
    assert len(records) == 2
    for record in records:
        assert record["kl_to_grow_policy"] == pytest.approx(0.0, abs=1e-6)
        assert record["grow_log_prob_gain"] == pytest.approx(0.0, abs=1e-6)


class Killed(Exception):
    pass


def killed_at(call: int):
    """An evaluate that fails at its `call`-th call (1: the start, then one per Improve step), as a kill would."""
    calls = []

    def evaluate(policy):
        calls.append(1)
        if len(calls) == call:
            raise Killed
        return {"dev_accuracy": 0.0}
    return evaluate


def run_killed(run_dir, call: int) -> None:
    with pytest.raises(Killed):
        make_rest(causal_policy(), run_dir, killed_at(call), grow_steps=2).run(grow_size=5)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("uninterrupted") / "run"
    return run_dir, make_rest(causal_policy(), run_dir, grow_steps=2).run(grow_size=5)


def checkpoints(run_dir) -> list[str]:
    folder = run_dir / "checkpoints"
    return sorted(str(p.parent.relative_to(folder)) for p in folder.rglob("model.safetensors"))


# killed in G1I2 (the Grow policy is the start, which the resumed policy holds) or in G2I2 (the Grow
# policy is G1I2, which the resumed run reloads from its checkpoint)
@pytest.mark.parametrize("call", [3, 5])
def test_resumed_run_logs_the_same_kl(tmp_path, uninterrupted, call):
    run_dir = tmp_path / "run"
    run_killed(run_dir, call)
    resumed = make_rest(causal_policy(), run_dir, grow_steps=2).run(grow_size=5)
    whole_dir, whole = uninterrupted
    assert [(r["G"], r["I"]) for r in resumed] == [(1, 1), (1, 2), (2, 1), (2, 2)]
    assert [r["kl_to_grow_policy"] for r in resumed] == pytest.approx([r["kl_to_grow_policy"] for r in whole], rel=1e-6)
    assert checkpoints(run_dir) == checkpoints(whole_dir)  # the Grow policy's checkpoint went after its last step


def test_resume_without_the_grow_policy_leaves_the_kl_out(tmp_path, uninterrupted):
    run_dir = tmp_path / "run"
    run_killed(run_dir, 5)
    grow_checkpoint = run_dir / layout.checkpoint_dir(layout.improve_stage(layout.STANDALONE, 1, 2))
    assert grow_checkpoint.exists()  # kept for the resume while G2's Improve steps run
    shutil.rmtree(grow_checkpoint)  # as a run directory from before the KL guard would be
    resumed = make_rest(causal_policy(), run_dir, grow_steps=2).run(grow_size=5)
    assert "kl_to_grow_policy" not in resumed[-1] and "kl_to_grow_policy" in resumed[-2]
    assert resumed[-1]["grow_log_prob_gain"] == pytest.approx(uninterrupted[1][-1]["grow_log_prob_gain"], rel=1e-6)
