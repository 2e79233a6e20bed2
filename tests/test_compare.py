"""`restlm compare` end to end on tiny models: every method on a user's own prompts task with their
reward function (compare_user.py), resume after SIGKILL with identical results, carrying a finished
method from another directory, --rerun, and the refusals (one line, exit 2, nothing written). Plugins:
test_compare_plugins.py; `restlm run` of one method: test_run_method.py."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from compare_user import METHODS, without_times, write_user_folder
from helpers import cli_env, restlm_cmd, safetensors_dtypes, stderr_lines

from restlm import cli
from restlm import run_layout as layout


@pytest.fixture(scope="module")
def user_folder(tmp_path_factory) -> Path:
    """A user's folder: prompts with an extra column, their reward module, a task config, a tiny Llama."""
    return write_user_folder(tmp_path_factory.mktemp("compare_task"))


def run_compare(folder: Path, out: Path, *extra: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(restlm_cmd("compare", "--task", "task.yaml", "--out", str(out), *extra), cwd=folder,
                          capture_output=True, text=True, timeout=timeout, env=cli_env())



@pytest.fixture(scope="module")
def finished(user_folder, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("compare_runs") / "full"
    result = run_compare(user_folder, out, "--methods", METHODS, "--seeds", "2", "--eval-samples", "2",
                         "--bootstrap", "200", "--keep-records", str(out.parent / "records"),
                         "--carry", str(out.parent / "records"))  # a records folder not yet written is skipped
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def test_every_method_runs_on_a_users_task_and_is_reported(finished):
    summary = json.loads((finished / "compare.json").read_text())
    assert summary["command"].startswith("restlm compare --task task.yaml")
    assert summary["task"] == "prompts" and summary["seeds"] == 2 and summary["heldout_inputs"] == 5
    assert summary["metrics"] == {"selection": "dev_reward", "proxy": "test_reward", "gold": "test_gold"}
    by_name = {m["method"]: m for m in summary["methods"]}
    assert list(by_name) == ["sft", "rest", "rest_em", "dpo", "ppo", "grpo"]
    for name, m in by_name.items():
        for key in ("proxy", "gold", "gold_ci95", "gold_minus_rest_ci95", "kl", "distinct2", "sampled_tokens",
                    "wall_time_s"):
            assert key in m, (name, key)
        low, high = m["gold_ci95"]
        assert low <= m["gold"] <= high
        for seed, record in enumerate(m["by_seed"]):
            steps = record["steps"]
            start = steps[0]
            assert start["step"] == "start"
            # step selection on dev only: the chosen step is the first of highest dev reward
            dev = [s["dev_reward"] for s in steps]
            assert record["chosen_step"] == steps[dev.index(max(dev))]["step"]
            chosen = next(s for s in steps if s["step"] == record["chosen_step"])
            assert record["proxy"] == chosen["test_reward"] and record["gold_at_chosen_step"] == chosen["test_gold"]
            # the final held-out decode reproduces the chosen step's: the table and the intervals agree
            assert record["gold"] == pytest.approx(chosen["test_gold"], abs=1e-12)
            # every method starts from the same start policy of its seed
            assert start["dev_reward"] == by_name["sft"]["by_seed"][seed]["steps"][0]["dev_reward"]
    assert by_name["sft"]["sampled_tokens"] == 0 and by_name["sft"]["kl"] == 0.0
    assert by_name["rest"]["gold_minus_rest_ci95"] is None
    for name in ("rest", "rest_em", "ppo", "grpo", "dpo"):
        assert by_name[name]["sampled_tokens"] > 0
    assert [s["step"] for s in by_name["ppo"]["by_seed"][0]["steps"]] == ["start", "step 1", "step 2", "step 3"]
    # without --budget, the online methods spend at most one step past what ReST's Grow steps spent
    assert [s["step"] for s in by_name["grpo"]["by_seed"][0]["steps"]][:2] == ["start", "step 1"]
    assert [s["step"] for s in by_name["rest"]["by_seed"][0]["steps"]] == ["start", "G1I1", "G1I2"]
    # a method that moved the policy has a KL to the start; the start itself has none
    for name, m in by_name.items():
        for record in m["by_seed"]:
            assert (record["kl"] == 0.0) == (record["chosen_step"] == "start") or name == "sft"
            assert record["kl"] >= 0.0  # exact at each sampled position; the sampled log-ratio beside it
            assert (record["kl_sampled"] == 0.0) == (record["kl"] == 0.0)
        assert m["kl_estimator"] == "exact"
    # a finished seed keeps its methods' checkpoints in bf16 (run.checkpoint_dtype); the start stays float32
    for seed in range(2):
        assert safetensors_dtypes(finished / layout.checkpoint_dir(layout.compare_start(seed))) == {"F32"}
        ppo = finished / layout.checkpoint_dir(layout.method_prefix(seed, "ppo"))
        assert safetensors_dtypes(ppo) == {"BF16"}  # its kept best step, and its value head
    text = (finished / "compare.md").read_text()
    assert "| ppo |" in text and "proxy_vs_gold.png" in text
    assert "exact over the vocabulary at each (never negative)" in text
    machine = json.loads((finished / layout.COMPARE_SUMMARY).read_text())["machine"]
    assert "torch threads" in machine and f"Machine: {machine}" in text
    assert (finished / "proxy_vs_gold.png").stat().st_size > 1000
    assert "data:image/png;base64," in (finished / "compare.html").read_text()


def test_a_killed_compare_resumes_to_identical_results(user_folder, finished, tmp_path):
    out = tmp_path / "killed"
    process = subprocess.Popen(restlm_cmd("compare", "--task", "task.yaml", "--out", str(out), "--methods", METHODS,
                                          "--seeds", "2", "--eval-samples", "2", "--bootstrap", "200"),
                               cwd=user_folder, env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    state = out / "state.json"
    deadline = time.time() + 300
    while time.time() < deadline:  # kill it in the middle of seed 0, once ReST has finished
        if state.exists() and layout.method_final(0, "rest") in state.read_text():
            break
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not (out / "compare.json").exists()
    result = run_compare(user_folder, out, "--methods", METHODS, "--seeds", "2", "--eval-samples", "2",
                         "--bootstrap", "200")
    assert result.returncode == 0, result.stderr[-3000:]
    assert without_times(json.loads((out / "compare.json").read_text())) == \
        without_times(json.loads((finished / "compare.json").read_text()))


def test_a_finished_method_is_carried_when_its_settings_match(user_folder, finished, tmp_path):
    out = tmp_path / "carried"
    # ppo's settings changed: rest and sft are carried, ppo runs again
    result = run_compare(user_folder, out, "--methods", "sft,rest,ppo", "--seeds", "1", "--eval-samples", "2",
                         "--bootstrap", "200", "--carry", str(finished), "--set", "ppo.total_steps=2")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = {m["method"]: m for m in json.loads((out / "compare.json").read_text())["methods"]}
    full = {m["method"]: m for m in json.loads((finished / "compare.json").read_text())["methods"]}
    assert summary["rest"]["by_seed"][0]["carried_from"] == str(finished)
    assert without_times(summary["rest"]["by_seed"][0]) == without_times(full["rest"]["by_seed"][0])
    assert "carried_from" not in summary["ppo"]["by_seed"][0]
    assert len(summary["ppo"]["by_seed"][0]["steps"]) == 3  # start and two steps


def test_kept_records_hold_each_finished_method_and_carry_it_into_a_lost_runs_place(user_folder, finished, tmp_path):
    import shutil
    from types import SimpleNamespace

    from restlm.compare.carry import keep_records
    from restlm.config import load_config

    def held(folder: Path) -> dict:
        return json.loads((folder / "state.json").read_text())["stages"]

    kept, stages = held(finished.parent / "records"), held(finished)
    assert sorted(kept) == sorted(key for key in stages if layout.final_parts(key))  # no Grow or Improve stage
    assert len(kept) == 2 * len(METHODS.split(",")) and kept == {key: stages[key] for key in kept}
    assert json.loads((finished.parent / "records" / "config.json").read_text()) == \
        json.loads((finished / "config.json").read_text())
    assert not list((finished.parent / "records").glob("**/*.safetensors"))
    records, second = tmp_path / "records", tmp_path / "second"
    shutil.copytree(finished.parent / "records", records)
    # the run directory is gone (a new machine): the same command into a new one runs nothing again
    result = run_compare(user_folder, second, "--methods", "sft,rest", "--seeds", "1", "--eval-samples", "2",
                         "--bootstrap", "200", "--keep-records", str(records), "--carry", str(records))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "== seed 0" not in result.stdout and not (second / "checkpoints").exists()  # not even the start
    again = {m["method"]: m for m in json.loads((second / "compare.json").read_text())["methods"]}
    before = {m["method"]: m for m in json.loads((finished / "compare.json").read_text())["methods"]}
    assert again["rest"]["by_seed"][0]["carried_from"] == str(records)
    assert without_times(again["rest"]["by_seed"][0]) == without_times(before["rest"]["by_seed"][0])
    assert held(records) == kept  # a run of the same comparison that holds fewer keeps the others, as they were
    config = load_config(str(user_folder / "task.yaml"), [])
    rest = [layout.method_final(seed, "rest") for seed in (0, 1)]
    # a rerun of rest drops its old records (a lost rerun must not carry the records it was replacing)
    forgotten = {k: v for k, v in stages.items() if not layout.is_under(k, layout.method_prefix(0, "rest"))
                 and not layout.is_under(k, layout.method_prefix(1, "rest"))}
    keep_records(SimpleNamespace(is_main=True, path=finished, state={"stages": forgotten}),
                 SimpleNamespace(keep_records=str(records), rerun=["rest"], config=config))
    assert sorted(held(records)) == sorted(set(kept) - set(rest))
    # a changed setting of rest: its records are dropped with the new config, sft's stay
    changed = tmp_path / "changed"
    changed.mkdir()
    recorded = json.loads((finished / "config.json").read_text())
    recorded["experiment"]["rest"]["improve_steps"] += 1
    (changed / "config.json").write_text(json.dumps(recorded))
    keep_records(SimpleNamespace(is_main=True, path=changed, state={"stages": {}}),
                 SimpleNamespace(keep_records=str(records), rerun=[], config=config))
    assert json.loads((records / "config.json").read_text()) == recorded
    assert {layout.method_final(seed, "sft") for seed in (0, 1)} <= set(held(records))
    assert not set(rest) & set(held(records))


def test_rerun_forgets_one_method_and_runs_it_again_keeping_the_others(user_folder, finished, tmp_path):
    import shutil

    out = tmp_path / "rerun"
    shutil.copytree(finished, out)
    before = json.loads((out / "state.json").read_text())["stages"]
    stale = out / layout.checkpoint_dir(layout.method_prefix(1, "dpo")) / "stale"
    stale.write_text("from the first run")
    process = subprocess.Popen(restlm_cmd("compare", "--task", "task.yaml", "--out", str(out), "--methods", METHODS,
                                          "--seeds", "2", "--eval-samples", "2", "--bootstrap", "200", "--rerun",
                                          "dpo"), cwd=user_folder, env=cli_env(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    old = [out / name for name in (layout.COMPARE_SUMMARY, layout.COMPARE_MARKDOWN, layout.COMPARE_HTML)]
    while any(path.exists() for path in old) and process.poll() is None:
        time.sleep(0.01)
    # the old summary and report are gone while the rerun runs: one killed mid-way leaves no stale compare.json
    assert process.poll() is None
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr[-3000:]
    assert [line for line in stdout.splitlines() if line.startswith("==")] == ["== seed 0: dpo", "== seed 1: dpo"]
    assert (out / layout.COMPARE_SUMMARY).exists() and (out / layout.COMPARE_HTML).exists()
    after = json.loads((out / "state.json").read_text())["stages"]
    assert set(after) == set(before)
    for key in before:  # the others untouched; dpo's records written again (equal but for times: seeds are fixed)
        assert (before[key] == after[key]) != (layout.method_of_stage(key) == "dpo"), key
    assert not stale.exists()
    assert without_times(after[layout.method_final(1, "dpo")]) == without_times(before[layout.method_final(1, "dpo")])
    metrics = [json.loads(line)["stage"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert sorted(metrics) == sorted(after)


# ---------------------------------------------------------------- refusals
REFUSALS = [
    ("a missing prompts file", ["--set", "prompts.train=nothere.jsonl"], "nothere.jsonl"),
    ("a column that is not there", ["--set", "prompts.prompt_column=prompt"], "train.jsonl:1: missing column 'prompt'"),
    ("an empty prompt set", ["--set", "prompts.dev=empty.jsonl"], "empty.jsonl"),
    ("a reward spec that cannot be built", ["--set", "rest.reward=compare_rewards:nothere"], "config key 'rest.reward'"),
    ("a reward spec ':'", ["--set", "rest.reward=:"], "config key 'rest.reward'"),
    ("an unknown method", ["--methods", "sft,bogus"], "--methods: unknown method 'bogus'"),
    ("a method named twice", ["--methods", "rest,rest"], "--methods: names a method twice"),
    ("a token budget of zero", ["--budget", "0"], "--budget: must be at least 1"),
    ("a budget below one grpo step", ["--methods", "sft,grpo", "--budget", "3"],
     "--budget: 3 sampled tokens is less than one grpo step's 2 x 2 samples"),
    ("no seeds", ["--seeds", "0"], "--seeds: must be at least 1"),
    ("no held-out prompts", ["--set", "prompts.test=null"], "config key 'prompts.test'"),
    ("one sample per prompt for dpo", ["--methods", "dpo", "--set", "rest.samples_per_input=1"],
     "config key 'rest.samples_per_input'"),
    ("two grow sizes", ["--methods", "rest", "--set", "rest.grow_sizes=[2,4]"], "config key 'rest.grow_sizes'"),
    ("bc_matched without rest", ["--methods", "sft,bc_matched"], "--methods: bc_matched reads the records of rest"),
    ("bc_matched on prompts without references", ["--methods", "sft,rest,bc_matched"],
     "--methods: bc_matched trains on the task's references, and this task has none"),
    ("a patience of zero", ["--set", "train.patience=0"], "config key 'train.patience'"),
    ("a rerun of a method not run", ["--methods", "sft,rest", "--rerun", "ppo"], "--rerun: ppo is not among --methods"),
    ("a rerun of rest without what reads it", ["--methods", "sft,rest,bc_matched", "--rerun", "rest"],
     "--rerun: bc_matched reads the records of rest"),
    ("a rerun of rest while ppo spends its budget", ["--methods", "sft,rest,ppo", "--rerun", "rest"],
     "--rerun: ppo reads the records of rest (its runs, or without --budget its token budget): rerun it too"),
    ("a carry folder with no records", ["--carry", "nowhere"], "--carry nowhere: not a finished compare directory"),
    ("a carry folder holding a restlm run", ["--carry", "a_run"], "--carry a_run: holds a `restlm run`, not a comparison"),
]


@pytest.mark.parametrize("case, flags, expected", REFUSALS, ids=[c[0] for c in REFUSALS])
def test_bad_input_is_one_line_exit_2_and_nothing_written(case, flags, expected, user_folder, tmp_path, monkeypatch,
                                                           capfd):
    (user_folder / "empty.jsonl").write_text("")
    (user_folder / "a_run").mkdir(exist_ok=True)
    (user_folder / "a_run" / "config.json").write_text('{"rest": {}}')
    (user_folder / "a_run" / "state.json").write_text('{"stages": {}}')
    monkeypatch.chdir(user_folder)
    monkeypatch.setattr(sys, "path", list(sys.path))
    out = tmp_path / "out"
    capfd.readouterr()
    code = cli.main(["compare", "--task", "task.yaml", "--out", str(out), *flags])
    err = capfd.readouterr().err
    lines = stderr_lines(err)
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith("restlm: error: ") and expected in lines[0], lines[0]
    assert not out.exists()


def test_a_method_that_cannot_train_the_tasks_policy_is_refused(tiny_model_dir, tiny_data, tmp_path, capfd):
    """PPO on a classifier: refused before anything is written (and a classification task has no held-out gold)."""
    from accelerate import Accelerator

    from restlm.config import load_config
    from restlm.errors import ConfigError
    from restlm.methods import build_method
    from restlm.tasks import build_task

    config = load_config(None, [f"model.name={tiny_model_dir}", "model.max_length=32", "data.source=file",
                                f"data.train={tiny_data['train']}", f"data.dev={tiny_data['dev']}"])
    task = build_task(config, Accelerator())
    policy = task.new_policy(0)
    for name in ("ppo", "dpo"):
        with pytest.raises(ConfigError, match=f"{name} trains causal policies; this task's policy is a classifier"):
            build_method(name).check(config, policy)
    build_method("rest").check(config, policy)  # ReST trains any policy
    out = tmp_path / "out"
    code = cli.main(["compare", "--task", str(tmp_path / "none.yaml"), "--out", str(out)])
    assert code == 2 and not out.exists()


def test_a_rerun_with_other_settings_is_refused(user_folder, finished, monkeypatch, capfd):
    monkeypatch.chdir(user_folder)
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = (finished / "state.json").read_bytes()
    capfd.readouterr()
    code = cli.main(["compare", "--task", "task.yaml", "--out", str(finished), "--methods", METHODS, "--seeds", "2",
                     "--eval-samples", "2", "--set", "rest.improve_steps=3"])
    lines = stderr_lines(capfd.readouterr().err)
    assert code == 2 and len(lines) == 1 and "other settings (experiment.rest.improve_steps)" in lines[0], lines
    assert (finished / "state.json").read_bytes() == before


def test_a_comparison_started_before_a_config_key_existed_still_resumes(user_folder, finished, tmp_path, monkeypatch,
                                                                          capfd):
    import shutil

    out = tmp_path / "older"
    shutil.copytree(finished, out)
    config = json.loads((out / "config.json").read_text())
    del config["experiment"]["method"]  # as written before `method` was a key: it counts at its default
    config["experiment"]["ppo"]["dtype"] = "float32"  # as written before the default became `auto`: kept
    del config["experiment"]["grpo"]["dtype"]  # as written before the key existed: float32, kept
    (out / "config.json").write_text(json.dumps(config))
    monkeypatch.chdir(user_folder)
    monkeypatch.setattr(sys, "path", list(sys.path))
    state = (out / "state.json").read_bytes()
    assert cli.main(["compare", "--task", "task.yaml", "--out", str(out), "--methods", METHODS, "--seeds", "2",
                     "--eval-samples", "2", "--bootstrap", "200"]) == 0, capfd.readouterr().err
    assert (out / "state.json").read_bytes() == state  # nothing ran again
