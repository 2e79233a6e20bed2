"""Generation engines (restlm.generation) on tiny models: shapes and token limits, greedy agreement
with `hf`, seeds, weights kept in step after a training step, bf16 copies, `auto`, bad choices."""
from __future__ import annotations

import sys

import pytest
import torch
from accelerate import Accelerator

from restlm.config import GenerationConfig, TrainConfig, load_config
from restlm.data.examples import Example
from restlm.errors import ConfigError
from restlm.generation import Sampling
from restlm.policies.base import TrainItem
from restlm.policies.causal import CausalLMPolicy
from restlm.training import train_policy
from tiny_models import SEQ2SEQ_SOURCES, tiny_llama, tiny_seq2seq_policy, tiny_tokenizer

pytest.importorskip("ctranslate2")

PROMPTS = [Example("the cat sat on the mat"), Example("Answer: Yes"), Example("the dog ran in the park"),
           Example("No")]
CT2_FLOAT = GenerationConfig(engine="ctranslate2", compute_type="float32")


def causal(seed: int = 0, max_new_tokens: int = 8) -> CausalLMPolicy:
    tok = tiny_tokenizer()
    return CausalLMPolicy(tiny_llama(len(tok), seed), tok, Accelerator(), max_new_tokens=max_new_tokens, batch_size=2)


def seq2seq():
    return tiny_seq2seq_policy(batch_size=2)


def inputs(policy):
    return PROMPTS if policy.kind == "causal" else [Example(s) for s in SEQ2SEQ_SOURCES]


ENGINES = {"hf": GenerationConfig(engine="hf"), "hf-bf16": GenerationConfig(engine="hf", dtype="bfloat16"),
           "torch": GenerationConfig(engine="torch"), "torch-bf16": GenerationConfig(engine="torch", dtype="bfloat16"),
           "ct2-float32": CT2_FLOAT, "ct2-int8": GenerationConfig(engine="ctranslate2", compute_type="int8")}


@pytest.mark.parametrize("make", [causal, seq2seq], ids=["causal", "seq2seq"])
@pytest.mark.parametrize("engine", list(ENGINES))
def test_every_engine_gives_k_sequences_within_the_token_limit(make, engine):
    policy = make()
    policy.use_engine(ENGINES[engine])
    examples = inputs(policy)
    ids = policy.generate_ids(examples, Sampling(n=3, greedy=False, temperature=1.0, max_new_tokens=5), seed=0)
    assert [len(per) for per in ids] == [3] * len(examples)
    eos = set(policy.eos_ids)
    for sequence in (s for per in ids for s in per):
        assert 1 <= len(sequence) <= 5
        assert not eos & set(sequence[:-1])  # an EOS only ever ends a sequence
    texts = policy.sample(examples, k=3, temperature=1.0, seed=0, max_new_tokens=5)
    assert [len(t) for t in texts] == [3] * len(examples) and all(isinstance(s, str) for t in texts for s in t)
    assert 0 < policy.last_generated_tokens <= 3 * 5 * len(examples)
    assert policy.last_generation["engine"].startswith(engine.split("-")[0].replace("ct2", "ctranslate2"))


@pytest.mark.parametrize("make", [causal, seq2seq], ids=["causal", "seq2seq"])
def test_ctranslate2_float32_greedy_equals_hf_greedy(make):
    policy = make()
    examples = inputs(policy)
    hf = policy.generate_ids(examples, Sampling(n=1, greedy=True, max_new_tokens=8), seed=0)
    policy.use_engine(CT2_FLOAT)
    ct2 = policy.generate_ids(examples, Sampling(n=1, greedy=True, max_new_tokens=8), seed=0)
    assert ct2 == hf


def test_bf16_greedy_stays_close_to_float32():
    """bf16 rounds the logits: a near-tie may flip a token, so the check is on the first tokens of most prompts."""
    policy = causal()
    sampling = Sampling(n=1, greedy=True, max_new_tokens=3)
    float32 = policy.generate_ids(PROMPTS, sampling, seed=0)
    policy.use_engine(GenerationConfig(engine="hf", dtype="bfloat16"))
    assert policy.engine.dtype == torch.bfloat16 and next(policy.unwrapped.parameters()).dtype == torch.float32
    bf16 = policy.generate_ids(PROMPTS, sampling, seed=0)
    assert sum(a[0][0] == b[0][0] for a, b in zip(float32, bf16)) >= len(PROMPTS) - 1


@pytest.mark.parametrize("engine", ["ct2-float32", "hf"])
def test_the_same_seed_gives_the_same_samples_and_another_seed_others(engine):
    policy = causal()
    policy.use_engine(ENGINES[engine])
    first = policy.sample(PROMPTS, k=4, temperature=1.0, seed=3)
    assert policy.sample(PROMPTS, k=4, temperature=1.0, seed=3) == first
    assert policy.sample(PROMPTS, k=4, temperature=1.0, seed=4) != first


@pytest.mark.parametrize("engine", ["ct2-float32", "hf-bf16", "torch-bf16"])
def test_an_engine_follows_the_weights_after_a_training_step(engine):
    """A training step changes the policy: the engine's next samples come from the new weights (one
    sync), and greedy outputs equal those of the hf engine on the trained policy."""
    policy = causal()
    policy.use_engine(ENGINES[engine])
    sampling = Sampling(n=1, greedy=True, max_new_tokens=6)
    before = policy.generate_ids(PROMPTS, sampling, seed=0)
    syncs = policy.engine.syncs
    policy.generate_ids(PROMPTS, sampling, seed=0)
    assert policy.engine.syncs == syncs  # unchanged weights: nothing to sync
    items = [TrainItem(e, "Yes Yes Yes") for e in PROMPTS]
    train_policy(policy, items, TrainConfig(batch_size=4, warmup_ratio=0.0), learning_rate=0.05, epochs=3, seed=0)
    after = policy.generate_ids(PROMPTS, sampling, seed=0)
    assert policy.engine.syncs == syncs + 1 and policy.engine.sync_seconds > 0
    assert after != before
    if engine == "ct2-float32":
        policy.use_engine(GenerationConfig(engine="hf"))
        assert policy.generate_ids(PROMPTS, sampling, seed=0) == after


def test_a_loaded_checkpoint_is_synced_too(tmp_path):
    policy, other = causal(seed=0), causal(seed=1)
    other.save(tmp_path / "other")
    policy.use_engine(CT2_FLOAT)
    sampling = Sampling(n=1, greedy=True, max_new_tokens=6)
    policy.generate_ids(PROMPTS, sampling, seed=0)
    policy.load_weights(tmp_path / "other")
    assert policy.generate_ids(PROMPTS, sampling, seed=0) == other.generate_ids(PROMPTS, sampling, seed=0)


def test_a_frozen_copy_generates_with_its_own_engine():
    policy = causal()
    policy.use_engine(CT2_FLOAT)
    frozen = policy.frozen_copy()
    assert frozen.engine is not policy.engine
    sampling = Sampling(n=1, greedy=True, max_new_tokens=6)
    assert frozen.generate_ids(PROMPTS, sampling, seed=0) == policy.generate_ids(PROMPTS, sampling, seed=0)


def test_auto_keeps_a_tiny_model_on_hf():
    policy = causal()
    policy.use_engine(GenerationConfig(engine="auto"))
    assert policy.engine.name == "hf"


def test_ctranslate2_asked_for_and_not_installed_is_one_config_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "ctranslate2", None)  # import ctranslate2 now raises ImportError
    policy = causal()
    with pytest.raises(ConfigError, match="'generation.engine': 'ctranslate2' is not installed: pip install ctranslate2"):
        policy.use_engine(CT2_FLOAT)
    policy.use_engine(GenerationConfig(engine="auto"))  # auto falls back to hf
    assert policy.engine.name == "hf"


@pytest.mark.parametrize("key, value, expected", [
    ("generation.engine", "vllm", "'generation.engine': must be one of auto, hf, torch, ctranslate2; got 'vllm'"),
    ("generation.compute_type", "int4", "'generation.compute_type': must be one of"),
    ("generation.dtype", "float16", "'generation.dtype': must be one of auto, float32, bfloat16"),
    ("generation.batch_tokens", "0", "'generation.batch_tokens': must be at least 1"),
])
def test_bad_generation_settings_are_refused_by_key(key, value, expected):
    with pytest.raises(ConfigError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        load_config(None, [f"{key}={value}"])
