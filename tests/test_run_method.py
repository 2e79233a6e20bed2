"""`restlm run` of one method other than ReST (`method: rloo`, `method: grpo`) on a user's task: its results as
a comparison with its start, resume of a finished run, and resume of one killed mid-way by SIGKILL."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from compare_user import without_times, write_user_folder
from helpers import cli_env, restlm_cmd

from restlm import cli
from restlm import run_layout as layout


@pytest.fixture(scope="module")
def user_folder(tmp_path_factory) -> Path:
    """A user's folder: prompts with an extra column, their reward module, a task config, a tiny Llama."""
    return write_user_folder(tmp_path_factory.mktemp("compare_task"))


def test_restlm_run_runs_another_method_alone_and_resumes_it(user_folder, tmp_path, monkeypatch, capfd):
    monkeypatch.chdir(user_folder)
    monkeypatch.setattr(sys, "path", list(sys.path))
    out = tmp_path / "rloo_run"
    argv = ["run", "--config", "task.yaml", "--set", "method=rloo", "--set", "grpo.total_steps=2", "--output-dir", str(out)]
    assert cli.main(argv) == 0, capfd.readouterr().err
    first = json.loads((out / "compare.json").read_text())
    assert [m["method"] for m in first["methods"]] == ["sft", "rloo"]
    assert first["methods"][1]["by_seed"][0]["settings"]["advantage"] == "leave_one_out"
    assert [s["step"] for s in first["methods"][1]["by_seed"][0]["steps"]] == ["start", "step 1", "step 2"]
    state = (out / "state.json").read_bytes()
    assert cli.main(["run", "--resume", str(out)]) == 0, capfd.readouterr().err  # finished: nothing runs again
    assert (out / "state.json").read_bytes() == state
    assert without_times(json.loads((out / "compare.json").read_text())) == without_times(first)


def test_an_online_method_killed_mid_run_resumes_from_its_saved_step(user_folder, tmp_path):
    """SIGKILL in the middle of GRPO's steps: the rerun continues from its last saved step (not from the
    start) and ends with the results of a run that was never killed."""
    argv = ["run", "--config", "task.yaml", "--set", "method=grpo", "--set", "grpo.total_steps=12",
            "--set", "grpo.eval_every=1"]
    whole = subprocess.run(restlm_cmd(*argv, "--output-dir", str(tmp_path / "whole")), cwd=user_folder, env=cli_env(),
                           capture_output=True, text=True, timeout=600)
    assert whole.returncode == 0, whole.stderr[-3000:]
    out = tmp_path / "killed"
    process = subprocess.Popen(restlm_cmd(*argv, "--output-dir", str(out)), cwd=user_folder, env=cli_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    saved = out / layout.online_state(layout.method_prefix(0, "grpo"))
    deadline = time.time() + 300
    while time.time() < deadline and not saved.exists():
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert saved.exists() and not (out / "compare.json").exists()
    resumed = subprocess.run(restlm_cmd("run", "--resume", str(out)), cwd=user_folder, env=cli_env(),
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "grpo: resumed at step" in resumed.stdout
    assert not saved.exists()
    assert without_times(json.loads((out / "compare.json").read_text())) == \
        without_times(json.loads((tmp_path / "whole" / "compare.json").read_text()))
