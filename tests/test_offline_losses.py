"""GOLD and BVMPO against values worked out by hand on 2-3 items, their gradients, token-level
inputs with padding, and the one calling convention every entry of LOSSES follows."""
from __future__ import annotations

import math

import pytest
import torch

from restlm.losses import LOSS_NEEDS, LOSSES, bc_loss, bvmpo_loss, gold_loss, sequence_log_probs

L5, L1, L8 = math.log(0.5), math.log(0.1), math.log(0.8)


def test_gold_by_hand():
    # item 0: tokens p = 0.5, 0.1; item 1: one token p = 0.8, then padding (-inf must not leak)
    token_log_probs = torch.tensor([[L5, L1], [L8, -math.inf]], requires_grad=True)
    mask = torch.tensor([[1, 1], [1, 0]])
    rewards = torch.tensor([1.0, 0.5])
    # w = max(p, 0.2): 0.5, 0.2 (0.1 clipped up), 0.8
    # loss = -(1/2) * [1.0 * (0.5 ln .5 + 0.2 ln .1) + 0.5 * (0.8 ln .8)]
    #      = -(1/2) * [(-0.346574 - 0.460517) + (-0.089257)] = 0.448174
    expected = -0.5 * (1.0 * (0.5 * L5 + 0.2 * L1) + 0.5 * 0.8 * L8)
    loss = gold_loss(token_log_probs, rewards, mask=mask, lower_bound=0.2)
    assert loss.item() == pytest.approx(expected) and expected == pytest.approx(0.448174, abs=1e-6)
    loss.backward()
    # the weights are detached: d loss / d log p_t = -(1/B) R_i w_t
    assert token_log_probs.grad.flatten().tolist() == pytest.approx([-0.25, -0.1, -0.2, 0.0])


def test_gold_lower_bound_and_per_item_inputs():
    # one "token" per item (a classifier): p = 0.5 and 0.1, rewards 1 and 1, u = 0.3
    log_probs = torch.tensor([L5, L1])
    # -(1/2) * (0.5 ln .5 + 0.3 ln .1) = 0.518674
    assert gold_loss(log_probs, torch.ones(2), lower_bound=0.3).item() == pytest.approx(
        -0.5 * (0.5 * L5 + 0.3 * L1))
    assert gold_loss(log_probs, torch.ones(2)).item() == pytest.approx(
        gold_loss(log_probs[:, None], torch.ones(2), mask=torch.ones(2, 1)).item())
    assert gold_loss(log_probs, torch.zeros(2)).item() == 0.0  # no reward, no signal
    with pytest.raises(ValueError):
        gold_loss(log_probs, torch.ones(2), lower_bound=0.0)


def test_bvmpo_by_hand():
    log_probs = torch.tensor([-1.0, -2.0, -0.5], requires_grad=True)
    ref = torch.tensor([-1.2, -1.5, -0.7])
    rewards = torch.tensor([0.9, 0.1, 0.5])
    # A = R - mean(R) = [0.4, -0.4, 0.0]; top ceil(0.5 * 3) = 2 items: 0 and 2
    # psi = softmax([0.4, 0.0] / 0.5) = [e^.8, 1] / (e^.8 + 1) = [0.689974, 0.310026], psi_1 = 0
    # policy term = -(0.689974 * -1.0 + 0.310026 * -0.5) = 0.844987
    # KL term = 0.1 * mean(ref - log_probs) = 0.1 * mean([-0.2, 0.5, -0.2]) = 0.1 * 0.033333
    e = math.exp(0.8)
    psi0, psi2 = e / (e + 1), 1 / (e + 1)
    expected = -(psi0 * -1.0 + psi2 * -0.5) + 0.1 * (0.1 / 3)
    assert expected == pytest.approx(0.848320, abs=1e-6)
    loss = bvmpo_loss(log_probs, rewards, ref_log_probs=ref, eta=0.5, alpha=0.1, top_fraction=0.5)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    loss.backward()
    # d/d log pi_i = -psi_i - alpha / B
    assert log_probs.grad.tolist() == pytest.approx([-psi0 - 0.1 / 3, -0.1 / 3, -psi2 - 0.1 / 3], rel=1e-6)


def test_bvmpo_baseline_and_shapes():
    log_probs = torch.tensor([-1.0, -2.0])
    ref = torch.tensor([-1.0, -1.0])
    rewards = torch.tensor([0.2, 0.6])
    # top ceil(0.5 * 2) = 1 item, the second (A = +0.2): psi = [0, 1]
    # loss = -(-2.0) + 0.1 * mean([0.0, 1.0]) = 2.05
    assert bvmpo_loss(log_probs, rewards, ref_log_probs=ref).item() == pytest.approx(2.05)
    # a constant shift of every reward (another baseline) changes nothing
    assert bvmpo_loss(log_probs, rewards + 3.0, ref_log_probs=ref).item() == pytest.approx(2.05)
    # top_fraction=1, eta large: psi -> [0.5, 0.5]; loss -> 1.5 + 0.05
    assert bvmpo_loss(log_probs, rewards, ref_log_probs=ref, eta=1e6, top_fraction=1.0).item() == pytest.approx(
        1.55, abs=1e-6)
    # token-level input with a mask sums to the same sequence log-probs
    tokens = torch.tensor([[-0.4, -0.6, -9.0], [-2.0, -9.0, -9.0]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    assert sequence_log_probs(tokens, mask).tolist() == pytest.approx([-1.0, -2.0])
    assert bvmpo_loss(tokens, rewards, mask=mask, ref_log_probs=ref).item() == pytest.approx(2.05)
    with pytest.raises(ValueError, match="ref_log_probs"):
        bvmpo_loss(log_probs, rewards)


def test_bc_keeps_its_values_and_takes_tokens():
    log_probs = torch.tensor([-0.5, -1.0, -2.0])
    assert bc_loss(log_probs, torch.tensor([1.0, 0.0, 2.0])).item() == pytest.approx(1.5)
    tokens = torch.tensor([[-0.25, -0.25], [-1.0, 0.0], [-2.0, -5.0]])
    mask = torch.tensor([[1, 1], [1, 0], [1, 0]])
    assert bc_loss(tokens, torch.tensor([1.0, 0.0, 2.0]), mask=mask).item() == pytest.approx(1.5)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_every_loss_takes_the_same_arguments_and_trains(name):
    torch.manual_seed(0)
    # a tiny "policy": per-token logits over 5 words for 3 items of up to 4 tokens
    logits = torch.randn(3, 4, 5, requires_grad=True)
    outputs = torch.randint(0, 5, (3, 4))
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 1, 0]])
    token_log_probs = torch.log_softmax(logits, -1).gather(-1, outputs[..., None])[..., 0]
    ref = sequence_log_probs(token_log_probs, mask).detach() - 0.1
    value = LOSSES[name](token_log_probs, torch.tensor([0.9, 0.2, 0.6]), mask=mask, ref_log_probs=ref)
    assert value.dim() == 0 and torch.isfinite(value)
    value.backward()
    assert logits.grad.abs().sum() > 0
    assert set(LOSS_NEEDS) == set(LOSSES)
    assert LOSS_NEEDS["bvmpo"].reference and LOSS_NEEDS["gold"].token_level and not LOSS_NEEDS["bc"].reference
