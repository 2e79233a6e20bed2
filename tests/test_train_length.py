"""How long supervised training runs: `max_steps` (BC matched to ReST's optimiser steps) and `after_epoch`
(early stopping of the start, `train.patience`)."""
from __future__ import annotations

import copy

import pytest
import torch
from accelerate import Accelerator

from restlm.config import TrainConfig, load_config
from restlm.data.examples import Example
from restlm.errors import ConfigError
from restlm.methods.sft import EarlyStopping
from restlm.policies.base import TrainItem
from restlm.policies.causal import CausalLMPolicy
from restlm.training import train_policy
from tiny_models import tiny_llama, tiny_tokenizer

ITEMS = [TrainItem(Example(uid=str(i), text=f"ein hund {i}", target=f"a dog {i} runs"), f"a dog {i} runs")
         for i in range(10)]
CONFIG = TrainConfig(batch_size=4, dtype="float32", warmup_ratio=0.0)  # 10 items: 3 batches an epoch


def policy(model=None):
    tok = tiny_tokenizer()
    return CausalLMPolicy(copy.deepcopy(model or tiny_llama(len(tok))), tok, Accelerator(cpu=True),
                          prompt_template="Translate: {text}", max_new_tokens=4, batch_size=4)


@pytest.mark.parametrize("max_steps", [1, 3, 7])
def test_max_steps_runs_exactly_that_many_optimiser_steps_over_repeated_epochs(max_steps):
    losses = []
    stats = train_policy(policy(), ITEMS, CONFIG, 1e-3, 99, seed=0, max_steps=max_steps,
                         on_step=lambda step, loss: losses.append(loss))
    assert stats.steps == len(losses) == max_steps
    # whole epochs of 3 batches (4 + 4 + 2 items in shuffled order), then the first batches of the next
    assert stats.examples in {1: {2, 4}, 3: {10}, 7: {22, 24}}[max_steps]


def test_max_steps_equal_to_whole_epochs_matches_epochs():
    model = tiny_llama(len(tiny_tokenizer()))
    by_epochs, by_steps = [], []
    train_policy(policy(model), ITEMS, CONFIG, 1e-3, 2, seed=0, on_step=lambda s, loss: by_epochs.append(loss))
    train_policy(policy(model), ITEMS, CONFIG, 1e-3, 5, seed=0, max_steps=6,
                 on_step=lambda s, loss: by_steps.append(loss))
    assert by_steps == by_epochs  # same batches, same schedule


def test_after_epoch_is_called_after_each_epoch_and_can_stop_training():
    calls, losses = [], []
    p = policy()

    def after_epoch(epoch):
        calls.append((epoch, len(losses)))
        p.model.eval()  # as an evaluation would leave it
        return epoch == 2

    stats = train_policy(p, ITEMS, CONFIG, 1e-3, 5, seed=0, after_epoch=after_epoch,
                         on_step=lambda s, loss: losses.append(loss))
    assert calls == [(1, 3), (2, 6)]  # after 3 and 6 steps; stopped before epoch 3
    assert stats.steps == 6 and stats.examples == 20
    assert p.model.training  # put back in training mode


class ScoredTask:
    """A task whose dev score is read from a script: epoch 1 0.2, epoch 2 0.5 (best), then lower."""

    selection_metric = "dev_reward"

    def __init__(self, scores):
        self.scores = list(scores)

    def selection_score(self, policy):
        return self.scores.pop(0)


def test_early_stopping_keeps_the_best_epochs_weights_and_stops_after_patience():
    p = policy()
    stopping = EarlyStopping(ScoredTask([0.2, 0.5, 0.4, 0.3, 0.9]), p, patience=2)
    snapshot = {}

    def after_epoch(epoch):
        stop = stopping(epoch)
        snapshot[epoch] = {k: v.clone() for k, v in p.model.state_dict().items()}
        return stop

    stats = train_policy(p, ITEMS, CONFIG, 1e-2, 5, seed=0, after_epoch=after_epoch)
    assert stats.steps == 12  # epochs 3 and 4 brought no new best: stopped after epoch 4
    stopping.restore_best()
    record = stopping.record()
    assert record.pop("eval_s") >= 0  # kept apart from the training time
    assert record == {"epochs_trained": 4, "best_epoch": 2, "dev_reward_by_epoch": [0.2, 0.5, 0.4, 0.3]}
    weights = p.model.state_dict()
    assert all(torch.equal(weights[k], snapshot[2][k]) for k in weights)
    assert not all(torch.equal(weights[k], snapshot[4][k]) for k in weights)


@pytest.mark.parametrize("value", [0, -1, True])
def test_a_patience_below_one_is_refused(value):
    with pytest.raises(ConfigError, match="train.patience"):
        load_config(overrides=[f"train.patience={str(value).lower()}"])


def test_max_steps_on_no_items_is_refused():
    with pytest.raises(ValueError, match="3 optimiser steps asked on no training items"):
        train_policy(policy(), [], CONFIG, 1e-3, 1, seed=0, max_steps=3)
