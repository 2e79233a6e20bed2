"""Two processes against one: the tiny run (no dropout) under `accelerate launch` with 2 CPU
processes (gloo) against the same config on one process.

On a CPU-only machine `accelerate launch --cpu --num_processes 2` starts ONE process (accelerate
1.15 routes --cpu to its simple launcher), and so does `accelerate launch --num_processes 2`
without an accelerate config; what starts 2 gloo processes is `--multi_gpu` with
ACCELERATE_USE_CPU=true, which is what this test runs.

Tolerances: SFT shards split evenly (40 items, global batch 8), so its train_loss must agree to
1e-4 relative (only float summation order and padding differ); every Improve step's train_loss
(kept counts like 21 or 41 give odd and 1-item last batches, which the loss scales per shard)
to 1e-3 relative; dev accuracy per cell within 1/len(dev); kept counts equal.
"""
from __future__ import annotations

import json
import subprocess

import pytest

from helpers import build_once, cli_env, launch_two, restlm_cmd, set_args, tiny_overrides
from restlm import run_layout as layout


@pytest.fixture(scope="module")
def runs(tiny_model_dir, tiny_data, tmp_path_factory):
    """The same tiny run on two processes and on one (once per session, shared by xdist workers)."""
    def build(folder):
        def args(name):
            return ["run", *set_args(tiny_overrides(tiny_model_dir, tiny_data["train"], tiny_data["dev"], folder / name,
                                                    train__epochs=6))]

        two = launch_two(args("two"))
        one = subprocess.Popen(restlm_cmd(*args("one")), env=cli_env(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        out_two, err_two = two.communicate(timeout=400)
        _, err_one = one.communicate(timeout=400)
        assert one.returncode == 0, err_one[-3000:]
        assert two.returncode == 0, err_two[-3000:]
        (folder / "stdout_two.txt").write_text(out_two)

    folder = build_once(tmp_path_factory, "distributed", build)

    def load(name):
        path = folder / name
        return {"results": json.loads((path / "results.json").read_text()),
                "stages": json.loads((path / "state.json").read_text())["stages"]}

    return {"one": load("one"), "two": load("two"), "stdout_two": (folder / "stdout_two.txt").read_text(),
            "dev_size": len(tiny_data["dev_rows"])}


def test_two_processes_really_ran(runs):
    # only the main process logs: each stage line once, and the same stages as one process
    stage_lines = [line for line in runs["stdout_two"].splitlines() if line.startswith("[")]
    assert len(stage_lines) == len(set(stage_lines)) == len(runs["two"]["stages"])
    assert list(runs["two"]["stages"]) == list(runs["one"]["stages"])


def test_sft_loss_matches_one_process(runs):
    sft = layout.seed_stage(0, "sft")
    one, two = runs["one"]["stages"][sft], runs["two"]["stages"][sft]
    assert two["train_loss"] == pytest.approx(one["train_loss"], rel=1e-4)
    assert two["dev_accuracy"] == one["dev_accuracy"]


def test_cells_match_one_process(runs):
    one, two = runs["one"]["results"]["cells"], runs["two"]["results"]["cells"]
    assert [(c["N"], c["G"], c["I"]) for c in two] == [(c["N"], c["G"], c["I"]) for c in one]
    for a, b in zip(one, two):
        assert abs(a["dev_accuracy"] - b["dev_accuracy"]) <= 1 / runs["dev_size"] + 1e-12, (a, b)
        assert a["kept"] == b["kept"]
        if a["threshold"] is not None:
            assert b["threshold"] == pytest.approx(a["threshold"], rel=1e-2)


def test_first_grow_matches_one_process(runs):
    # before any Improve step the two runs hold the same weights, so the grown sets agree closely
    for size in (8, None):
        grow = layout.grow_stage(layout.trajectory(0, size), 1)
        one, two = runs["one"]["stages"][grow], runs["two"]["stages"][grow]
        assert (two["rows"], two["grown"]) == (one["rows"], one["grown"])
        assert two["reward_mean"] == pytest.approx(one["reward_mean"], rel=1e-5)


def test_improve_losses_match_one_process(runs):
    for key, record in runs["one"]["stages"].items():
        if "train_loss" in record:
            assert runs["two"]["stages"][key]["train_loss"] == pytest.approx(record["train_loss"], rel=1e-3), key
