"""restlm.presets: the committed benchmark results re-rendered byte for byte, the pure helpers on hand
values, and the benchmark scripts kept thin (at most 80 lines, `--help` works). No model is loaded."""
from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from restlm.config import ExperimentConfig
from restlm.presets import (
    mrpc_grid,
    multi30k,
    reward_model_search,
    reward_models,
)

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = REPO / "benchmarks"
RESULTS = BENCHMARKS / "results"
THIN = ["mrpc_grid", "multi30k_smollm2", "reward_models", "reward_model_search"]


# ---------------------------------------------------------------- committed results, rendered again
@pytest.mark.parametrize("results, render", [
    ("mrpc_minilm.json", mrpc_grid.markdown),
    ("multi30k_smollm2.json", multi30k.summary_markdown),
    ("reward_models.json", reward_models.markdown),
    ("reward_models_minilm_2_epochs/reward_models.json", reward_models.markdown),
    ("reward_models_search/reward_models.json", reward_model_search.markdown),
])
def test_committed_results_render_to_their_committed_markdown(results, render):
    path = RESULTS / results
    assert render(json.loads(path.read_text(encoding="utf-8"))) == path.with_suffix(".md").read_text(encoding="utf-8")


# ---------------------------------------------------------------- mrpc_grid
def cell(seed: int, g: int, i: int, accuracy: float) -> dict:
    return {"N": 8, "G": g, "I": i, "seed": seed, "dev_accuracy": accuracy, "dev_f1": accuracy - 0.1,
            "wall_time_s": 10.0 * (g + 1)}


def test_summarise_cells_gives_seed_means_and_the_paired_difference():
    results = {"cells": [cell(0, 0, 0, 0.70), cell(1, 0, 0, 0.74), cell(0, 1, 1, 0.75), cell(1, 1, 1, 0.80)]}
    control, treated = mrpc_grid.summarise_cells(results)
    assert (control["N"], control["G"], control["I"], control["seeds"]) == (8, 0, 0, 2)
    assert control["dev_accuracy_mean"] == pytest.approx(0.72)
    assert control["dev_f1_mean"] == pytest.approx(0.62)
    assert control["diff_vs_g0i0_mean"] == 0.0 and not control["diff_excludes_zero"]
    assert (treated["G"], treated["I"]) == (1, 1)
    assert treated["dev_accuracy_mean"] == pytest.approx(0.775)
    assert treated["dev_accuracy_std"] == pytest.approx(0.025 * 2 ** 0.5)
    assert treated["dev_accuracy_ci95"][1] == 1.0  # 0.775 + 12.706 * 0.025 is clipped to the unit interval
    # differences 0.05 and 0.06: mean 0.055, std / sqrt(2) = 0.005, t(0.975, 1) = 12.7062
    assert treated["diff_vs_g0i0_mean"] == pytest.approx(0.055)
    assert treated["diff_vs_g0i0_ci95"] == pytest.approx([0.055 - 12.7062 * 0.005, 0.055 + 12.7062 * 0.005], abs=1e-4)
    assert not treated["diff_excludes_zero"]
    assert treated["wall_time_s"] == 20.0


def test_rest_is_chosen_per_seed_on_validation_and_scored_on_dev_beside_the_optimistic_dev_pick():
    def with_val(seed, g, i, dev, val):
        return {**cell(seed, g, i, dev), "val_accuracy": val}

    results = {"cells": [with_val(0, 0, 0, 0.70, 0.7), with_val(1, 0, 0, 0.74, 0.7),
                         with_val(0, 1, 1, 0.72, 0.9), with_val(0, 1, 2, 0.80, 0.8),   # seed 0: val picks G1I1
                         with_val(1, 1, 1, 0.78, 0.8), with_val(1, 1, 2, 0.76, 0.8)]}  # seed 1: a tie, the first
    honest, optimistic = mrpc_grid.chosen_per_seed(results)
    assert (honest["chosen_on"], honest["steps"]) == ("validation", ["G1I1", "G1I1"])
    assert honest["dev_accuracy_mean"] == pytest.approx(0.75)
    assert honest["diff_vs_g0i0_mean"] == pytest.approx(((0.72 - 0.70) + (0.78 - 0.74)) / 2)
    assert (optimistic["chosen_on"], optimistic["steps"]) == ("dev (optimistic)", ["G1I2", "G1I1"])
    assert optimistic["dev_accuracy_mean"] == pytest.approx(0.79)
    text = mrpc_grid.markdown({"model": "m", "machine": "x", "command": "c", "seeds": 2, "train_examples_per_s": 1.0,
                               "inference_pairs_per_s": 1.0, "peak_memory_mb": 1.0, "cells": [],
                               "chosen": [honest, optimistic]})
    assert "| 8 | validation | 2 | 0.7500 |" in text and "| 8 | dev (optimistic) | 2 | 0.7900 |" in text


# ---------------------------------------------------------------- multi30k
def test_paper_step_renumbers_only_after_an_unfiltered_first_step():
    config = ExperimentConfig()
    config.rest.thresholds = [0.0, 0.5, 0.75]
    assert [multi30k.paper_step(config, i) for i in (0, 1, 2, 3)] == [0, 0, 1, 2]
    config.rest.thresholds = [0.5, 0.75]
    assert [multi30k.paper_step(config, i) for i in (0, 1, 2)] == [0, 1, 2]


def translation_row(g: int, i: int, loss: str, reward: float, test_bleu: float, iwslt_bleu: float) -> dict:
    return {"G": g, "I": i, "loss": loss, "heldout_reward": reward, "test_bleu": test_bleu, "iwslt_bleu": iwslt_bleu}


def test_goal_compares_the_best_rest_row_by_reward_with_bc():
    rows = [translation_row(0, 0, "bc", 0.90, 30.0, 20.0),  # the best reward, but it is the baseline
            translation_row(1, 0, "bc", 0.60, 33.0, 21.0),
            translation_row(1, 1, "gold", 0.65, 32.5, 19.5)]
    assert multi30k.goal(rows) == {"best_row": "G1I1 gold", "test_bleu_gain": 2.5, "iwslt_bleu_gain": -0.5, "met": False}
    rows[2]["iwslt_bleu"] = 20.0
    assert multi30k.goal(rows)["met"] is True  # +2.5 BLEU, no IWSLT loss: both goals at their bounds or past
    rows[2]["test_bleu"] = 31.9
    assert multi30k.goal(rows)["met"] is False


# ---------------------------------------------------------------- reward_models
def test_combine_spec_reads_a_name_and_its_folders():
    assert reward_models.combine_spec(" ens = runs/a , runs/b ,") == ("ens", ["runs/a", "runs/b"])


@pytest.mark.parametrize("spec", ["ens=runs/a", "=runs/a,runs/b", "ens", "ens=,"])
def test_combine_spec_refuses_a_malformed_spec(spec):
    with pytest.raises(SystemExit, match="--combine wants NAME=PATH,PATH"):
        reward_models.combine_spec(spec)


def split(eval_pairs: int = 200) -> dict:
    return {"data": "hh.jsonl", "split_seed": 0, "train_pairs": 1800, "eval_pairs": eval_pairs, "max_length": 256}


def test_kept_models_keeps_the_others_with_their_own_command(tmp_path):
    earlier = tmp_path / "reward_models.json"
    earlier.write_text(json.dumps({**split(), "command": "python old", "machine": "box",
                                   "models": [{"name": "minilm"}, {"name": "smollm2-lora", "command": "python its own"},
                                              {"name": "minilm-x3"}]}))
    kept = reward_models.kept_models(earlier, {**split(), "models": []}, ["minilm"])
    assert kept == [{"command": "python its own", "machine": "box", "name": "smollm2-lora"},
                    {"command": "python old", "machine": "box", "name": "minilm-x3"}]


def test_kept_models_refuses_another_split(tmp_path):
    earlier = tmp_path / "reward_models.json"
    earlier.write_text(json.dumps({**split(eval_pairs=100), "command": "c", "machine": "m", "models": []}))
    with pytest.raises(SystemExit, match="eval_pairs is 100, this run's is 200; cannot --merge"):
        reward_models.kept_models(earlier, split(), [])


# ---------------------------------------------------------------- the scripts stay thin
@pytest.mark.parametrize("path", sorted(BENCHMARKS.glob("*.py")), ids=lambda p: p.name)
def test_a_benchmark_script_is_at_most_80_lines(path):
    assert len(path.read_text(encoding="utf-8").splitlines()) <= 80


@pytest.fixture(scope="module")
def helps():
    # all five at once: each imports torch (and most the whole package), seconds apiece
    started = {name: subprocess.Popen([sys.executable, str(BENCHMARKS / f"{name}.py"), "--help"], cwd=REPO,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for name in THIN}
    return {name: (process.communicate(timeout=120)[0], process.returncode) for name, process in started.items()}


@pytest.mark.parametrize("name", THIN)
def test_a_benchmark_script_answers_help(helps, name):
    output, code = helps[name]
    assert code == 0, output
    assert output.startswith(f"usage: {name}.py")


@pytest.mark.parametrize("name", THIN)
def test_a_benchmark_script_calls_a_preset_main(name):
    # three scripts import their preset only after parsing (a fast --help): check those imports here
    tree = ast.parse((BENCHMARKS / f"{name}.py").read_text(encoding="utf-8"))
    presets = [alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module == "restlm.presets"
               for alias in node.names]
    assert len(presets) == 1
    assert callable(importlib.import_module(f"restlm.presets.{presets[0]}").main)
