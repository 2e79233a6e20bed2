"""Reward-model training on two processes against one: `restlm reward-model` on a tiny random BERT
(no dropout) and 16 preference pairs, once plainly and once under `accelerate launch` with 2 CPU
processes (gloo), started side by side.

Global batches of 5 pairs split 3 + 2 across the processes, and the last batch of each epoch (1
pair) leaves the second process an empty share (it runs at loss factor 0), so the shard weighting
is exercised. Only float summation order and padding differ, so the train losses must agree to
1e-4 relative and the held-out accuracy exactly.
"""
from __future__ import annotations

import json
import random
import subprocess

import numpy as np
import pytest

from helpers import WORDS, build_once, build_tiny_bert, cli_env, launch_two, restlm_cmd
from restlm.data.preferences import read_preferences
from restlm.reward_models import RewardModel

GOOD, BAD = ["red", "big", "fast"], ["blue", "small", "slow"]


def write_cue_pairs(path, n: int, seed: int):
    """Preference JSONL whose chosen response holds a 'good' cue word and the rejected one a 'bad' one."""
    rng = random.Random(seed)
    neutral = [w for w in WORDS if w not in GOOD + BAD]

    def noise(k):
        return " ".join(rng.sample(neutral, k))

    rows = [{"prompt": noise(rng.randint(3, 8)), "chosen": f"{noise(2)} {rng.choice(GOOD)} {noise(rng.randint(0, 3))}",
             "rejected": f"{noise(1)} {rng.choice(BAD)} {noise(rng.randint(0, 3))}"} for _ in range(n)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same reward-model command on one process and on two (once per session, shared by xdist workers)."""
    def build(folder):
        model = build_tiny_bert(folder / "bert", num_labels=1)
        data = write_cue_pairs(folder / "pairs.jsonl", 24, seed=0)

        def args(name):
            return ["reward-model", "--model", str(model), "--data", str(data), "--out", str(folder / name),
                    "--train-pairs", "16", "--eval-pairs", "8", "--max-length", "32", "--batch-size", "5",
                    "--epochs", "3", "--learning-rate", "2e-2"]

        two = launch_two(args("two"))
        one = subprocess.Popen(restlm_cmd(*args("one")), env=cli_env(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        out_two, err_two = two.communicate(timeout=300)
        _, err_one = one.communicate(timeout=300)
        assert one.returncode == 0, err_one[-3000:]
        assert two.returncode == 0, err_two[-3000:]
        (folder / "stdout_two.txt").write_text(out_two)

    folder = build_once(tmp_path_factory, "reward_model_distributed", build)
    return {"folder": folder, "one": json.loads((folder / "one" / "metrics.json").read_text()),
            "two": json.loads((folder / "two" / "metrics.json").read_text()),
            "stdout_two": (folder / "stdout_two.txt").read_text()}


def test_two_processes_really_ran_and_only_the_main_one_printed(runs):
    assert (runs["one"]["processes"], runs["two"]["processes"]) == (1, 2)
    assert json.loads(runs["stdout_two"]) == runs["two"]  # one JSON object: printed once


def test_losses_and_accuracy_match_one_process(runs):
    one, two = runs["one"], runs["two"]
    assert (two["train_pairs"], two["eval_pairs"]) == (one["train_pairs"], one["eval_pairs"]) == (16, 8)
    assert two["mean_train_loss"] == pytest.approx(one["mean_train_loss"], rel=1e-4)
    assert two["final_train_loss"] == pytest.approx(one["final_train_loss"], rel=1e-4)
    assert two["heldout_pairwise_accuracy_before_training"] == one["heldout_pairwise_accuracy_before_training"]
    assert two["heldout_pairwise_accuracy"] == one["heldout_pairwise_accuracy"]
    # it learned (the loss starts at log 2 = 0.693), so the comparisons above can fail
    assert one["final_train_loss"] < one["mean_train_loss"] < 0.5
    assert one["heldout_pairwise_accuracy"] > one["heldout_pairwise_accuracy_before_training"]


def test_saved_model_loads_and_scores_like_the_one_process_model(runs):
    one, two = (RewardModel.from_pretrained(str(runs["folder"] / name), device="cpu") for name in ("one", "two"))
    assert (two.kind, two.max_length) == ("encoder", 32)
    pairs = read_preferences(runs["folder"] / "pairs.jsonl")
    prompts, responses = [p.prompt for p in pairs], [p.chosen for p in pairs]
    scores_one, scores_two = one.score(prompts, responses), two.score(prompts, responses)
    # up to a constant: r(chosen) - r(rejected) leaves the head's bias a gradient of 0 plus float
    # noise, which AdamW's normalised steps turn into a drift that differs between the runs
    np.testing.assert_allclose(scores_two - scores_two.mean(), scores_one - scores_one.mean(), atol=1e-4)
    assert np.ptp(scores_one) > 0.1  # different inputs get different rewards: the check above can fail
