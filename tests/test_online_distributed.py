"""GRPO and PPO on two processes against one. GRPO: a tiny classifier (labels as actions, the `correct` reward) under
`accelerate launch` with 2 CPU processes (gloo), the same config on one process.

A classifier's labels are drawn per input from the logits of every input, whichever process computed
them, so both runs draw the same samples; each process then trains on half of every minibatch and DDP
averages the gradients. Tolerance: every step's reward, loss, KL and clip fraction within 1e-5 (only the
order of float sums differs), the same chosen step and dev accuracy.
(A generative policy's samples depend on the process count: each process generates a share of the
prompts with its own chunk seeds; its runs agree in distribution, not sample by sample.)
PPO: a tiny Llama on a prompts task with top_p near 0 (every draw the most likely token, so both runs
sample alike); the value head's gradients are averaged by hand. Same tolerance, 1e-5.
"""
from __future__ import annotations

import json
import subprocess

import pytest

from helpers import cli_env, launch_two, restlm_cmd, set_args, tiny_overrides


@pytest.fixture(scope="module")
def runs(tiny_model_dir, tiny_data, tmp_path_factory):
    folder = tmp_path_factory.mktemp("grpo_distributed")

    def args(name):
        return ["run", *set_args(tiny_overrides(
            tiny_model_dir, tiny_data["train"], tiny_data["dev"], folder / name, method="grpo", rest__reward="correct",
            data__validation_fraction=0.25, grpo__learning_rate=0.01, grpo__batch_size=8, grpo__samples_per_prompt=4,
            grpo__mini_batch_size=8, grpo__epochs=2, grpo__total_steps=4, grpo__eval_every=2))]

    two = launch_two(args("two"))
    one = subprocess.run(restlm_cmd(*args("one")), env=cli_env(), capture_output=True, text=True, timeout=400)
    out_two, err_two = two.communicate(timeout=400)
    assert one.returncode == 0, one.stderr[-3000:]
    assert two.returncode == 0, err_two[-3000:]

    def load(name):
        lines = (folder / name / "logs" / "seed0_grpo_metrics.jsonl").read_text().splitlines()
        return {"steps": [json.loads(line) for line in lines],
                "compare": json.loads((folder / name / "compare.json").read_text())}

    return {"one": load("one"), "two": load("two"), "out_two": out_two}


def test_two_processes_really_ran(runs):
    assert runs["out_two"].count("== seed 0: grpo") == 1  # the main process announces the method
    assert "== seed 0: grpo (2 processes)" in runs["out_two"]


def test_two_processes_give_the_steps_of_one(runs):
    one, two = runs["one"]["steps"], runs["two"]["steps"]
    assert len(one) == len(two) == 4
    for a, b in zip(one, two):
        for key in ("grpo/reward_mean", "grpo/loss", "grpo/kl", "grpo/clip_frac", "grpo/entropy",
                    "grpo/frac_reward_zero_std"):
            assert b[key] == pytest.approx(a[key], abs=1e-5), key
    assert any(abs(m["grpo/loss"]) > 1e-3 for m in one)  # the runs trained, so agreeing says something


def test_two_processes_choose_the_same_step(runs):
    (a,), (b,) = ([m for m in runs[name]["compare"]["methods"] if m["method"] == "grpo"] for name in ("one", "two"))
    assert a["chosen_steps"] == b["chosen_steps"]
    assert b["gold"] == pytest.approx(a["gold"], abs=1e-6) and b["proxy"] == pytest.approx(a["proxy"], abs=1e-6)


@pytest.fixture(scope="module")
def ppo_runs(tmp_path_factory):
    """PPO on a user's prompts task with a tiny Llama, on two processes and on one. top_p near 0 makes every
    draw the most likely token, so both runs sample alike whatever their chunk seeds."""
    from compare_user import write_user_folder

    folder = write_user_folder(tmp_path_factory.mktemp("ppo_distributed"))

    def args(name):
        return ["run", "--config", str(folder / "task.yaml"), "--set", "method=ppo", "--set", "ppo.top_p=1e-6",
                "--set", "ppo.total_steps=3", "--set", "ppo.batch_size=4", "--set", "ppo.mini_batch_size=4",
                "--set", "ppo.ppo_epochs=2", "--set", "ppo.learning_rate=0.01",
                "--set", "ppo.dtype=float32",  # two processes give one's steps to 1e-5 in float32, not in bf16
                "--output-dir", str(folder / name)]

    import os

    cwd = os.getcwd()
    os.chdir(folder)  # the task's paths and its reward module are the folder's
    try:
        two = launch_two(args("two"))
        one = subprocess.run(restlm_cmd(*args("one")), env=cli_env(), capture_output=True, text=True, timeout=400)
        out_two, err_two = two.communicate(timeout=400)
    finally:
        os.chdir(cwd)
    assert one.returncode == 0, one.stderr[-3000:]
    assert two.returncode == 0, err_two[-3000:]
    return {name: [json.loads(line) for line in
                   (folder / name / "logs" / "seed0_ppo_metrics.jsonl").read_text().splitlines()]
            for name in ("one", "two")} | {"out_two": out_two}


def test_ppo_on_two_processes_gives_the_steps_of_one(ppo_runs):
    assert ppo_runs["out_two"].count("== seed 0: ppo (2 processes)") == 1
    one, two = ppo_runs["one"], ppo_runs["two"]
    assert len(one) == len(two) == 3
    for a, b in zip(one, two):
        for key in ("ppo/mean_reward", "ppo/kl", "ppo/policy_loss", "ppo/value_loss", "ppo/clipfrac"):
            assert b[key] == pytest.approx(a[key], abs=1e-5), key
    assert any(abs(m["ppo/value_loss"]) > 1e-4 for m in one)
