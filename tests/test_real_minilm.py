"""The real model on real data: MiniLM ('minilm', from its pip package) fine-tuned for one epoch
on the first 64 MRPC training pairs lowers the training NLL and beats its untrained head on the
first 64 dev pairs. About 15 s on one CPU thread."""
from __future__ import annotations

import numpy as np
import pytest
from accelerate import Accelerator
from accelerate.utils import set_seed

from restlm.config import TrainConfig
from restlm.data import data_root, read_mrpc
from restlm.policies.base import TrainItem
from restlm.policies.classifier import ClassifierPolicy
from restlm.training import train_policy


def nll_and_accuracy(policy, examples):
    nll = -policy.log_probs(examples, [e.label for e in examples]).mean()
    accuracy = np.mean([p == e.label for p, e in zip(policy.predict(examples), examples)])
    return float(nll), float(accuracy)


@pytest.mark.real
def test_minilm_sft_one_epoch_on_64_mrpc_pairs():
    root = data_root()
    train, dev = read_mrpc(root / "mrpc", "train")[:64], read_mrpc(root / "mrpc", "dev")[:64]
    set_seed(0)
    policy = ClassifierPolicy.from_pretrained("minilm", Accelerator(), max_length=128, batch_size=64)
    train_nll_before, _ = nll_and_accuracy(policy, train)
    dev_nll_before, dev_accuracy_before = nll_and_accuracy(policy, dev)
    assert train_nll_before == pytest.approx(np.log(2), abs=0.05)  # a fresh head knows nothing

    stats = train_policy(policy, [TrainItem(e, e.label) for e in train], TrainConfig(batch_size=8), 1e-4, 1, seed=0)
    assert stats.steps == 8 and np.isfinite(stats.mean_loss)

    train_nll_after, _ = nll_and_accuracy(policy, train)
    dev_nll_after, dev_accuracy_after = nll_and_accuracy(policy, dev)
    assert train_nll_after < train_nll_before - 0.01
    assert dev_nll_after < dev_nll_before
    assert dev_accuracy_after > dev_accuracy_before, (dev_accuracy_before, dev_accuracy_after)
