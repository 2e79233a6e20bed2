"""The ReST loop end to end on a tiny random BERT and 40 sentence pairs, through
`Experiment(load_config(None, overrides)).run_all()`: what the run directory holds (config,
metrics per stage, state, grown sets with rewards, checkpoints, results cells, report), the
reference NLL schedule (threshold = mean of the grown set's rewards, then strictly lower), kept
counts that match the grown file and never grow, the learning rate halving per Improve step,
`rest.original_data` none/all/filtered, and early stopping.

SFT runs 6 epochs (not 1) so that the tiny model learns something and dev accuracy moves
between steps; every run here takes a few seconds.
"""
from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
from helpers import build_once, tiny_overrides

from restlm import run_layout as layout
from restlm.atomic_files import read_jsonl
from restlm.config import RestConfig, load_config, to_dict
from restlm.experiment import Experiment
from restlm.rest import ReST

SEEDS, SIZES, G, I = 2, [8, None], 2, 2
N_TRAIN = 40


def run_experiment(tiny_model_dir, tiny_data, output_dir, **extra):
    overrides = tiny_overrides(tiny_model_dir, tiny_data["train"], tiny_data["dev"], output_dir,
                               run__seeds=SEEDS, train__epochs=6, **extra)
    config = load_config(None, overrides)
    return config, Experiment(config).run_all()


@pytest.fixture(scope="module")
def full_run(tiny_model_dir, tiny_data, tmp_path_factory):
    """The whole tiny experiment, run once per session (shared by xdist workers)."""
    folder = build_once(tmp_path_factory, "rest_full_run",
                        lambda out: run_experiment(tiny_model_dir, tiny_data, out / "run")) / "run"
    config = load_config(None, tiny_overrides(tiny_model_dir, tiny_data["train"], tiny_data["dev"], folder,
                                              run__seeds=SEEDS, train__epochs=6))
    results = json.loads((folder / "results.json").read_text())
    state = json.loads((folder / "state.json").read_text())
    return SimpleNamespace(path=folder, config=config, results=results, stages=state["stages"])


def test_run_directory_contents(full_run):
    path = full_run.path
    assert json.loads((path / "config.json").read_text()) == to_dict(full_run.config)
    metrics = read_jsonl(path / "metrics.jsonl")
    assert [m["stage"] for m in metrics] == list(full_run.stages)  # one line per stage, in order
    assert all({k: v for k, v in m.items() if k != "stage"} == full_run.stages[m["stage"]] for m in metrics)
    expected_stages = {layout.MAJORITY}
    for seed in range(SEEDS):
        expected_stages |= {layout.seed_stage(seed, "untrained"), layout.seed_stage(seed, "sft")}
        for n in SIZES:
            prefix = layout.trajectory(seed, n)
            for g in range(1, G + 1):
                expected_stages |= {layout.grow_stage(prefix, g)}
                expected_stages |= {layout.improve_stage(prefix, g, i) for i in range(1, I + 1)}
    assert set(full_run.stages) == expected_stages
    assert len(list((path / "grown").glob("*.jsonl"))) == SEEDS * len(SIZES) * G
    for name in ("results.json", "report.md", "report.html"):
        assert (path / name).stat().st_size > 100
    assert "G1I2" in (path / "report.md").read_text() or "G1 I2" in (path / "report.md").read_text()
    assert not list(path.rglob("*.tmp")) and not list(path.rglob(".*.json.*"))  # nothing half-written


def test_grown_sets_hold_originals_plus_samples_with_rewards(full_run):
    for seed in range(SEEDS):
        for n in SIZES:
            for g in range(1, G + 1):
                record = full_run.stages[layout.grow_stage(layout.trajectory(seed, n), g)]
                rows = read_jsonl(full_run.path / record["grown_file"])
                drawn = N_TRAIN if n is None else n
                assert len(rows) == record["rows"] == N_TRAIN + drawn  # argmax: one output per drawn input
                assert record["grown"] == drawn
                assert [r["source"] for r in rows] == ["original"] * N_TRAIN + ["grown"] * drawn
                assert [r["output"] for r in rows[:N_TRAIN]] == [r["gold"] for r in rows[:N_TRAIN]]
                grown = rows[N_TRAIN:]
                assert len({r["index"] for r in grown}) == drawn
                assert all(isinstance(r["reward"], float) and r["reward"] > 0 for r in rows)
                # the argmax label of two has probability >= 1/2, so NLL <= ln 2
                assert all(r["reward"] <= math.log(2) + 1e-6 for r in grown)
                # the same (input, output) scores the same as an original row and as a grown one
                original = {(r["index"], r["output"]): r["reward"] for r in rows[:N_TRAIN]}
                for r in grown:
                    if (r["index"], r["output"]) in original:
                        assert r["reward"] == pytest.approx(original[(r["index"], r["output"])], abs=1e-5)
                assert record["reward_mean"] == pytest.approx(np.mean([r["reward"] for r in rows]))


def test_results_cells(full_run):
    cells = full_run.results["cells"]
    expected = [(s, n, 0, 0) for s in range(SEEDS) for n in SIZES]
    expected += [(s, n, g, i) for s in range(SEEDS) for n in SIZES for g in range(1, G + 1) for i in range(1, I + 1)]
    got = [(c["seed"], c["N"], c["G"], c["I"]) for c in cells]
    assert len(got) == len(set(got)) == SEEDS * len(SIZES) * (1 + G * I)
    assert set(got) == set(expected)
    for c in cells:
        assert 0.0 <= c["dev_accuracy"] <= 1.0 and 0.0 <= c["dev_f1"] <= 1.0
        assert "kl_to_grow_policy" not in c  # a classifier has no KL guard
        key = (layout.seed_stage(c["seed"], "sft") if c["G"] == 0
               else layout.improve_stage(layout.trajectory(c["seed"], c["N"]), c["G"], c["I"]))
        assert c["dev_accuracy"] == full_run.stages[key]["dev_accuracy"]
    # the tiny model learns something: not every cell sits at chance
    assert len({c["dev_accuracy"] for c in cells}) > 1
    assert set(full_run.results["baselines"]) == {"majority class", "untrained head"}
    untrained_times = full_run.results["baselines"]["untrained head"]["wall_time_s"]  # the report's Compute counts it
    assert len(untrained_times) == SEEDS and all(t > 0 for t in untrained_times)


def test_inspect_and_the_report_say_what_the_run_read(full_run):
    from restlm.inspect_run import inspect_run

    # the Grow records carry the reward's direction; the report's config leaves out unread sections
    assert "reward nll: lower is better; an Improve step keeps rows with reward <= its threshold" in inspect_run(full_run.path)
    assert "translation" not in full_run.results["config_sections"] and "rest" in full_run.results["config_sections"]
    assert '"translation"' not in (full_run.path / "report.md").read_text().split("## Config")[1]


def test_reference_nll_thresholds_and_kept_counts(full_run):
    for seed in range(SEEDS):
        for n in SIZES:
            prefix = layout.trajectory(seed, n)
            for g in range(1, G + 1):
                rows = read_jsonl(full_run.path / full_run.stages[layout.grow_stage(prefix, g)]["grown_file"])
                rewards = np.array([r["reward"] for r in rows])
                steps = [full_run.stages[layout.improve_stage(prefix, g, i)] for i in range(1, I + 1)]
                thresholds = [s["threshold"] for s in steps]
                assert thresholds[0] == float(rewards.mean())
                assert thresholds[1] == pytest.approx(rewards.min() + 0.5 * (thresholds[0] - rewards.min()))
                assert all(a > b for a, b in zip(thresholds, thresholds[1:]))  # NLL: lower keeps fewer
                kept = [s["kept"] for s in steps]
                assert kept == [int((rewards <= t).sum()) for t in thresholds]
                assert all(a >= b for a, b in zip(kept, kept[1:])) and kept[-1] >= 1
                is_grown = np.array([r["source"] == "grown" for r in rows])
                assert [s["kept_grown"] for s in steps] == [int(((rewards <= t) & is_grown).sum()) for t in thresholds]


def test_learning_rate_halves_each_improve_step(full_run):
    base = full_run.config.rest.improve_learning_rate
    for key, record in full_run.stages.items():
        if (i := layout.improve_step_of(key)) is not None:
            assert record["lr"] == pytest.approx(base * 0.5 ** (i - 1))


def test_a_finished_trajectory_keeps_only_its_best_checkpoint(full_run):
    checkpoints = full_run.path / "checkpoints"
    kept = sorted(str(p.parent.relative_to(checkpoints)) for p in checkpoints.rglob("model.safetensors"))
    for seed in range(SEEDS):
        assert layout.seed_stage(seed, "sft") in kept  # every trajectory's start
        for n in SIZES:
            prefix = layout.trajectory(seed, n)
            steps = {layout.improve_stage(prefix, g, i): full_run.stages[layout.improve_stage(prefix, g, i)]["dev_accuracy"]
                     for g in range(1, G + 1) for i in range(1, I + 1)}
            best_score = max([full_run.stages[layout.seed_stage(seed, "sft")]["dev_accuracy"], *steps.values()])
            ours = [k for k in kept if k.startswith(prefix + "/")]
            # the first step that reached the best score, or none when no step beat the fine-tuned start
            first_best = next((k for k, v in steps.items() if v == best_score), None)
            if first_best is not None and full_run.stages[layout.seed_stage(seed, "sft")]["dev_accuracy"] < best_score:
                assert ours == [first_best]
            else:
                assert ours == []


@pytest.mark.parametrize("original_data", ["none", "all", "filtered"])
def test_original_data(tiny_model_dir, tiny_data, tmp_path, original_data):
    overrides = tiny_overrides(tiny_model_dir, tiny_data["train"], tiny_data["dev"], tmp_path / "run",
                               train__epochs=6, rest__grow_sizes="[8]", rest__grow_steps=1,
                               rest__original_data=original_data, run__histograms="false",
                               baselines__untrained_head="false")
    Experiment(load_config(None, overrides)).run_all()
    stages = json.loads((tmp_path / "run" / "state.json").read_text())["stages"]
    prefix = layout.trajectory(0, 8)
    rows = read_jsonl(tmp_path / "run" / stages[layout.grow_stage(prefix, 1)]["grown_file"])
    rewards = np.array([r["reward"] for r in rows])
    is_grown = np.array([r["source"] == "grown" for r in rows])
    assert int(is_grown.sum()) == 8
    assert len(rows) == (8 if original_data == "none" else 48)
    for i in (1, 2):
        record = stages[layout.improve_stage(prefix, 1, i)]
        passes = rewards <= record["threshold"]
        assert record["kept_grown"] == int((passes & is_grown).sum())
        expected = {"none": int(passes.sum()),  # only grown rows exist
                    "all": N_TRAIN + int((passes & is_grown).sum()),  # every original, filtered grown
                    "filtered": int(passes.sum())}[original_data]
        assert record["kept"] == expected
    if original_data == "none":
        assert stages[layout.improve_stage(prefix, 1, 1)]["threshold"] == float(rewards.mean())


def test_early_stop_patience_one(full_run, tiny_model_dir, tiny_data, tmp_path):
    """Stops each trajectory at its first Improve step without a new best dev accuracy."""
    _, results = run_experiment(tiny_model_dir, tiny_data, tmp_path / "run", rest__early_stop_patience=1)
    expected = []
    for seed in range(SEEDS):
        for n in SIZES:
            prefix = layout.trajectory(seed, n)
            best = full_run.stages[layout.seed_stage(seed, "sft")]["dev_accuracy"]
            expected.append((seed, n, 0, 0))
            for g in range(1, G + 1):
                for i in range(1, I + 1):
                    score = full_run.stages[layout.improve_stage(prefix, g, i)]["dev_accuracy"]
                    expected.append((seed, n, g, i))
                    if score <= best:
                        break
                    best = score
                else:
                    continue
                break
    got = [(c["seed"], c["N"], c["G"], c["I"]) for c in results["cells"]]
    assert got == expected
    assert len(got) < SEEDS * len(SIZES) * (1 + G * I)  # it stopped somewhere
    # the steps that ran match the uninterrupted run exactly
    full = {(c["seed"], c["N"], c["G"], c["I"]): c["dev_accuracy"] for c in full_run.results["cells"]}
    assert all(c["dev_accuracy"] == full[(c["seed"], c["N"], c["G"], c["I"])] for c in results["cells"])


def should_stop(patience, scores, start=0.5):
    rest = ReST(policy=None, reward="nll", train_data=[], evaluate=None, config=RestConfig(early_stop_patience=patience),
                train_config=None, stages=SimpleNamespace(run=None))
    return rest._should_stop([{"dev_accuracy": s} for s in scores], start)


def test_should_stop_counts_steps_without_a_new_best():
    assert should_stop(None, [0.1, 0.1, 0.1]) is False
    assert should_stop(1, [0.6]) is False and should_stop(1, [0.5]) is True  # equal is not better
    assert should_stop(2, [0.6, 0.55]) is False and should_stop(2, [0.6, 0.55, 0.58]) is True
    assert should_stop(2, [0.6, 0.55, 0.7]) is False


def test_patience_zero_stops_at_the_first_step_that_does_not_beat_sft():
    assert should_stop(0, [0.4]) is True
    assert should_stop(0, [0.6]) is False


def test_early_stop_patience_zero_end_to_end(full_run, tiny_model_dir, tiny_data, tmp_path):
    _, results = run_experiment(tiny_model_dir, tiny_data, tmp_path / "run", rest__early_stop_patience=0)
    for seed in range(SEEDS):
        for n in SIZES:
            sft = full_run.stages[layout.seed_stage(seed, "sft")]["dev_accuracy"]
            first = full_run.stages[layout.improve_stage(layout.trajectory(seed, n), 1, 1)]["dev_accuracy"]
            cells = [c for c in results["cells"] if (c["seed"], c["N"]) == (seed, n)]
            if first <= sft:
                assert len(cells) == 2  # G0I0 and G1I1
            else:
                assert len(cells) > 2, (seed, n, sft, first)
