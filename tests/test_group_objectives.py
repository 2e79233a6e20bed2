"""GRPO's and RLOO's pure pieces: advantages by hand, and the loss against TRL 1.16's own
GRPOTrainer._compute_loss on the same batch (loss and gradient to 1e-5, for every loss type both have)."""
from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch
from accelerate import Accelerator

from restlm.ppo.group_objectives import group_advantages, group_policy_loss, leave_one_out_advantages


def test_group_advantages_by_hand():
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 2.0, 2.0])  # two groups of 3
    centred, zero = group_advantages(rewards, 3, scale="none")
    assert centred.tolist() == pytest.approx([2 / 3, -1 / 3, -1 / 3, -2 / 3, 1 / 3, 1 / 3])
    std = (((2 / 3) ** 2 + 2 * (1 / 3) ** 2) / 2) ** 0.5  # sample std (n - 1) of each group
    scaled, _ = group_advantages(rewards, 3, scale="group")
    assert scaled.tolist() == pytest.approx((centred / (std + 1e-4)).tolist())
    assert zero.tolist() == [False] * 6
    _, zero = group_advantages(torch.tensor([1.0, 1.0, 0.0, 1.0]), 2)
    assert zero.tolist() == [True, True, False, False]  # frac_reward_zero_std = 0.5
    equal, _ = group_advantages(torch.tensor([3.0, 3.0]), 2)
    assert equal.tolist() == [0.0, 0.0]


def test_batch_scale_divides_by_the_batch_std():
    rewards = torch.tensor([1.0, 0.0, 3.0, 1.0])
    scaled, _ = group_advantages(rewards, 2, scale="batch")
    assert scaled.tolist() == pytest.approx((torch.tensor([0.5, -0.5, 1.0, -1.0]) / (rewards.std() + 1e-4)).tolist())


def test_leave_one_out_by_hand():
    advantages = leave_one_out_advantages(torch.tensor([1.0, 0.0, 0.0, 4.0, 2.0, 0.0]), 3)
    # 1 - (0 + 0) / 2, 0 - (1 + 0) / 2, ...; 4 - (2 + 0) / 2, 2 - (4 + 0) / 2, 0 - (4 + 2) / 2
    assert advantages.tolist() == pytest.approx([1.0, -0.5, -0.5, 3.0, 0.0, -3.0])
    with pytest.raises(ValueError, match="at least 2"):
        leave_one_out_advantages(torch.tensor([1.0]), 1)


def test_unknown_variants_are_refused():
    with pytest.raises(ValueError, match="scale"):
        group_advantages(torch.zeros(4), 2, scale="sqrt")
    with pytest.raises(ValueError, match="loss_type"):
        group_policy_loss(torch.zeros(1, 2), torch.zeros(1, 2), torch.zeros(1), torch.ones(1, 2), loss_type="ppo")


def test_a_first_step_clips_nothing_and_a_moved_ratio_clips_by_hand():
    log_probs = torch.tensor([[-1.0, -2.0]])
    loss, stats = group_policy_loss(log_probs, log_probs, torch.tensor([1.0]), torch.ones(1, 2))
    assert loss.item() == pytest.approx(-1.0) and stats["clip_frac"].item() == 0.0
    # ratio e^0.5 = 1.65 > 1.2 on the first token with a positive advantage: clipped to 1.2
    loss, stats = group_policy_loss(log_probs + torch.tensor([[0.5, 0.0]]), log_probs, torch.tensor([1.0]), torch.ones(1, 2))
    assert loss.item() == pytest.approx(-(1.2 + 1.0) / 2) and stats["clip_frac"].item() == 0.5


def trl_loss(log_probs, old_log_probs, advantages, mask, loss_type, beta, ref_log_probs, max_completion_length):
    """TRL's GRPOTrainer._compute_loss on a stand-in trainer whose token pass returns `log_probs`."""
    from trl import GRPOTrainer

    trainer = SimpleNamespace(
        top_entropy_quantile=1.0, off_policy_mask_threshold=None, importance_sampling_level="token", beta=beta,
        args=SimpleNamespace(use_bias_correction_kl=False, delta=None), loss_type=loss_type, epsilon_low=0.2,
        epsilon_high=0.2, use_vllm=False, vllm_importance_sampling_correction=False,
        model=SimpleNamespace(training=True), current_gradient_accumulation_steps=1,
        max_completion_length=max_completion_length, _entropy_bonus_enabled=False, aux_loss_enabled=False,
        _metrics=defaultdict(lambda: defaultdict(list)), accelerator=Accelerator(cpu=True),
        _get_per_token_logps_and_entropies=lambda *a, **k: (log_probs, torch.zeros_like(log_probs), None))
    rows, width = log_probs.shape
    inputs = {"prompt_ids": torch.ones(rows, 1, dtype=torch.long), "prompt_mask": torch.ones(rows, 1, dtype=torch.long),
              "completion_ids": torch.ones(rows, width, dtype=torch.long), "completion_mask": mask,
              "advantages": advantages, "old_per_token_logps": old_log_probs, "ref_per_token_logps": ref_log_probs}
    return GRPOTrainer._compute_loss(trainer, None, inputs), trainer._metrics["train"]


@pytest.mark.parametrize("loss_type", ["grpo", "bnpo", "dr_grpo"])
@pytest.mark.parametrize("beta", [0.0, 0.04])
def test_the_loss_and_its_gradient_equal_trls(loss_type, beta):
    generator = torch.Generator().manual_seed(0)
    rows, width = 6, 5
    old = -torch.rand(rows, width, generator=generator) * 3
    new = (old + torch.randn(rows, width, generator=generator) * 0.3).requires_grad_(True)  # some ratios clip
    reference = old + torch.randn(rows, width, generator=generator) * 0.1
    mask = torch.ones(rows, width, dtype=torch.long)
    mask[1, 3:] = 0
    mask[4, 1:] = 0
    advantages, _ = group_advantages(torch.tensor([1.0, 0.0, 0.5, 0.0, 1.0, 1.0]), 3)
    ours, stats = group_policy_loss(new, old, advantages, mask, loss_type=loss_type, max_completion_length=8,
                                    beta=beta, ref_log_probs=reference)
    (ours_grad,) = torch.autograd.grad(ours, new)
    theirs, metrics = trl_loss(new, old, advantages, mask, loss_type, beta, reference, 8)
    (theirs_grad,) = torch.autograd.grad(theirs, new)
    assert ours.item() == pytest.approx(theirs.item(), abs=1e-5)
    assert torch.allclose(ours_grad, theirs_grad, atol=1e-5)
    assert stats["clip_frac"].item() == pytest.approx(metrics["clip_ratio/region_mean"][0], abs=1e-6)
    assert stats["clip_frac"].item() > 0
    if beta:
        assert stats["kl"].item() == pytest.approx(metrics["kl"][0], abs=1e-6)
