"""train.dtype: bf16 autocast for supervised training, chosen by measurement, checked against float32.

Tolerance: bf16 keeps 8 bits of mantissa (about 0.4% per rounding); the weights and AdamW stay float32,
so the per-step losses of a bf16 run stay within 3% of a float32 run's from the same weights and seed.
"""
from __future__ import annotations

import copy

import pytest
import torch
from accelerate import Accelerator

import restlm.precision as precision
from restlm.config import TrainConfig, load_config, recorded_config
from restlm.data.examples import Example
from restlm.errors import ConfigError
from restlm.policies.base import TrainItem
from restlm.policies.causal import CausalLMPolicy
from restlm.training import train_policy
from tiny_models import tiny_llama, tiny_tokenizer

ITEMS = [TrainItem(Example(uid=str(i), text=f"ein hund {i}", target=f"a dog {i} runs"), f"a dog {i} runs")
         for i in range(12)]


def trained(dtype: str, model) -> tuple[list[float], object]:
    tok = tiny_tokenizer()
    policy = CausalLMPolicy(copy.deepcopy(model), tok, Accelerator(cpu=True), prompt_template="Translate: {text}",
                            max_new_tokens=8, batch_size=4)
    losses = []
    stats = train_policy(policy, ITEMS, TrainConfig(batch_size=4, dtype=dtype, warmup_ratio=0.0), 1e-3, 2, seed=0,
                         on_step=lambda step, loss: losses.append(loss))
    return losses, stats, policy


def test_bf16_losses_agree_with_float32_and_the_weights_stay_float32():
    model = tiny_llama(len(tiny_tokenizer()))
    (fp32, stats32, _), (bf16, stats16, policy) = trained("float32", model), trained("bfloat16", model)
    assert (stats32.dtype, stats16.dtype) == ("float32", "bfloat16")
    assert len(fp32) == len(bf16) == 6
    assert bf16 == pytest.approx(fp32, rel=3e-2)
    assert bf16 != fp32  # autocast really ran in bf16
    assert all(p.dtype == torch.float32 for p in policy.model.parameters())


@pytest.mark.parametrize("pays, expected", [(True, "bfloat16"), (False, "float32")])
def test_auto_follows_the_measurement(monkeypatch, pays, expected):
    monkeypatch.setattr(precision, "bf16_pays", lambda device="cpu": pays)
    assert trained("auto", tiny_llama(len(tiny_tokenizer())))[1].dtype == expected


def test_runs_recorded_before_the_key_train_in_float32():
    assert recorded_config({"train": {"epochs": 2}}).train.dtype == "float32"
    assert recorded_config({}).train.dtype == "float32"
    assert recorded_config({"train": {"dtype": "bfloat16"}}).train.dtype == "bfloat16"
    assert recorded_config({"train": {"dtype": "auto"}}).train.epochs == 3
    assert load_config().train.dtype == "auto"  # a new run measures


def test_an_unknown_dtype_is_one_line_naming_the_key():
    with pytest.raises(ConfigError, match="train.dtype"):
        load_config(overrides=["train.dtype=half"])
