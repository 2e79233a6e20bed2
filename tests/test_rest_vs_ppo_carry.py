"""benchmarks/rest_vs_ppo.py --carry-method: a finished method's record is reused only when its run
read the same flags, models and held-out prompts; the other methods' flags may differ and are recorded."""
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import rest_vs_ppo  # noqa: E402

SETTINGS = {"prompts": 32, "eval_prompts": 2, "seed": 0, "grow_temperature": 0.8, "improve_lr": 1e-5,
            "ppo_lr": 3e-6, "dpo_beta": 0.1, "reward_model": None, "gold_model": None}
HELDOUT = [SimpleNamespace(text="A fine"), SimpleNamespace(text="The plot")]


def write_results(path: Path, settings: dict, prompts=("A fine",)) -> str:
    record = {"method": "ppo", "gold": 0.86, "greedy_examples": [{"prompt": p, "output": "yes"} for p in prompts],
              "heldout_outputs": ["yes", "no"]}
    task = {"name": "sentiment", "settings": settings, "proxy": "sentiment:/m/reward", "gold_model": {"path": "/m/gold"},
            "methods": [record]}
    path.write_text(json.dumps({"tasks": [task]}))
    return str(path)


def carry(file: str, method: str, settings: dict, proxy="sentiment:/m/reward", gold="/m/gold"):
    bench = SimpleNamespace(name="sentiment", heldout=HELDOUT)
    entry = {"proxy": proxy, "gold_model": {"path": gold}}
    return rest_vs_ppo.carried_method(f"{file}:sentiment:{method}", file, method, settings, bench, entry)


def test_other_methods_flags_may_differ_and_are_recorded(tmp_path):
    file = write_results(tmp_path / "old.json", SETTINGS)
    record = carry(file, "ppo", {**SETTINGS, "grow_temperature": 1.0, "improve_lr": 3e-6, "reward_model": "/m/reward"})
    assert record["gold"] == 0.86 and record["carried_from"] == file
    assert record["carried_settings"] == {"grow_temperature": 0.8, "improve_lr": 1e-5}


@pytest.mark.parametrize("change", [{"ppo_lr": 1e-6}, {"prompts": 64}, {"seed": 1}])
def test_a_flag_the_method_reads_must_match(tmp_path, change):
    file = write_results(tmp_path / "old.json", SETTINGS)
    with pytest.raises(SystemExit, match=f"differs in what ppo reads \\({next(iter(change))}\\)"):
        carry(file, "ppo", {**SETTINGS, **change})


def test_dpo_reads_rest_grow_temperature(tmp_path):
    file = write_results(tmp_path / "old.json", SETTINGS)
    with pytest.raises(SystemExit, match="no dpo record"):
        carry(file, "dpo", SETTINGS)
    assert "grow_temperature" in rest_vs_ppo.METHOD_FLAGS["dpo"]


def test_other_models_or_prompts_are_refused(tmp_path):
    file = write_results(tmp_path / "old.json", SETTINGS)
    with pytest.raises(SystemExit, match="proxy sentiment:/m/reward"):
        carry(file, "ppo", SETTINGS, proxy="sentiment:/other")
    with pytest.raises(SystemExit, match="gold_model"):
        carry(file, "ppo", SETTINGS, gold="/other")
    other_prompts = write_results(tmp_path / "prompts.json", SETTINGS, prompts=("Not this",))
    with pytest.raises(SystemExit, match="held-out prompts"):
        carry(other_prompts, "ppo", SETTINGS)


@pytest.mark.parametrize("spec", ["old.json:sentiment", "old.json:chess:ppo", "old.json:sentiment:a2c"])
def test_a_malformed_spec_is_one_line(spec):
    with pytest.raises(SystemExit, match="expected FILE:TASK:METHOD"):
        rest_vs_ppo.carry_method_spec(spec)


def test_an_unreadable_file_is_one_line(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(SystemExit, match="cannot read"):
        carry(str(tmp_path / "bad.json"), "ppo", SETTINGS)


def full_task(name: str) -> dict:
    method = {"method": "sft", "proxy": 0.8, "gold": 0.7, "kl": 0.0, "distinct2": 0.9, "sampled_tokens": 0,
              "wall_time_s": 0.0, "eval_time_s": 1.0, "greedy_examples": [{"prompt": "A fine", "output": "film"}]}
    return {"name": name, "prompts": 4, "dev_prompts": 4, "eval_prompts": 4, "proxy": "chrf", "command": "python x",
            "settings": SETTINGS, "methods": [method]}


def test_a_file_made_of_carried_tasks_does_not_count_the_time_of_the_runs_it_replaced(tmp_path):
    out = tmp_path / "canonical"
    out.with_suffix(".json").write_text(json.dumps({"machine": "m", "benchmark_wall_time_s": 3000.0,
                                                    "tasks": [full_task("sentiment"), full_task("translation")]}))
    for name in ("sentiment", "translation"):
        (tmp_path / f"{name}.json").write_text(json.dumps({"machine": "m", "tasks": [full_task(name)]}))
    rest_vs_ppo.main(["--report-only", "--out", str(out), "--carry-task", f"{tmp_path / 'sentiment.json'}:sentiment",
                      "--carry-task", f"{tmp_path / 'translation.json'}:translation"])
    results = json.loads(out.with_suffix(".json").read_text())
    assert [t["carried_from"] for t in results["tasks"]] == [str(tmp_path / f"{n}.json") for n in ("sentiment", "translation")]
    assert results["benchmark_wall_time_s"] < 60
    assert "every task was carried over whole" in out.with_suffix(".md").read_text()
