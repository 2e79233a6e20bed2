"""benchmarks/arithmetic_smollm2.py's summary (restlm.presets.arithmetic) of a finished comparison directory, on
records written by hand for the real arithmetic task: rates, paired differences, goals and the BC-matched control."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from restlm import run_layout as layout
from restlm.config import recorded_config
from restlm.presets.arithmetic import markdown, summarise
from restlm.rewards import build_reward
from restlm.tasks import build_task

RECORDS = Path(__file__).resolve().parent.parent / "benchmarks/results/arithmetic_smollm2_records"
RIGHT = {"sft": 100, "rest": 160, "grpo": 120, "bc_matched": 110}  # held-out problems answered right, of 200


def test_summary_of_a_finished_comparison(tmp_path):
    shutil.copy(RECORDS / "config.json", tmp_path / "config.json")
    task = build_task(recorded_config(json.loads((tmp_path / "config.json").read_text())["experiment"]), None)
    task.load_data()
    problems = task.heldout()
    right = [p.target for p in problems]
    wrong = ["Answer: -1"] * len(problems)
    assert list(build_reward("exact_answer")(None, problems, right)) == [1.0] * len(problems)
    stages, methods = {}, []
    for name, n in RIGHT.items():
        for seed in range(2):
            outputs = right[:n] + wrong[n:]
            stages[layout.method_final(seed, name)] = {"heldout_outputs": outputs, "gold_scores": [1.0] * n + [0.0] * (200 - n)}
        methods.append({"method": name, "gold_ci95": [0.0, 1.0], "sampled_tokens": 100.0, "wall_time_s": 1.0,
                        "kl": 0.1, "chosen_steps": ["start", "start"]})
    (tmp_path / "state.json").write_text(json.dumps({"stages": stages}))
    (tmp_path / "compare.json").write_text(json.dumps({"command": "cmd", "data": "arithmetic", "model": "m", "seeds": 2,
                                                       "budget": None, "methods": methods}))
    summary = summarise(tmp_path, resamples=200)
    by = {m["method"]: m for m in summary["methods"]}
    assert by["rest"]["heldout_exact_strict"] == pytest.approx(0.8) and by["sft"]["heldout_exact_lenient"] == 0.5
    assert by["rest"]["strict_minus_sft"] == pytest.approx(0.3)
    assert summary["goals"]["rest_minus_sft"]["met"] and summary["goals"]["rest_minus_grpo"]["diff"] == pytest.approx(0.2)
    control = summary["controls"]["rest_minus_bc_matched"]["strict"]
    assert control["diff"] == pytest.approx(0.25) and control["ci95"][0] > 0
    assert "Control: ReST − BC matched" in markdown(summary) and "+0.250" in markdown(summary)
