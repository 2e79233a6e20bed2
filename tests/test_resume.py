"""Resume, the real way: `restlm run` in a subprocess is killed with SIGKILL mid-run, then
`restlm run --resume DIR` finishes it; every results cell, stage loss and grown set must equal
those of an uninterrupted run exactly. Also the run directory's guards: a locked directory, an
output directory that already holds a run, and a resume of a directory without one, each exit 2
with one line on stderr."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from helpers import build_once, cli_env, restlm_cmd, run_cli, set_args, stderr_lines, tiny_overrides
from restlm import cli
from restlm import run_layout as layout
from restlm.config import load_config, to_dict
from restlm.runs import RunDir

STAGES = 1 + 2 * (2 + 2 * 2 * 3)  # majority; per seed: untrained, sft, per N and G: grow + 2 improve
COMPARED = ("dev_accuracy", "dev_f1", "threshold", "kept", "kept_grown", "kept_mean_reward", "lr")


def overrides(tiny_model_dir, tiny_data, output_dir):
    return tiny_overrides(tiny_model_dir, tiny_data["train"], tiny_data["dev"], output_dir,
                          run__seeds=2, train__epochs=6)


def stage_count(path) -> int:
    try:
        return len(json.loads((path / "state.json").read_text())["stages"])
    except (FileNotFoundError, json.JSONDecodeError):
        return 0


def checkpoints(run_dir) -> list[str]:
    folder = run_dir / "checkpoints"
    return sorted(str(p.parent.relative_to(folder)) for p in folder.rglob("model.safetensors"))


def comparable(run_dir) -> tuple[list, dict, dict]:
    results = json.loads((run_dir / "results.json").read_text())
    cells = [{k: c[k] for k in ("seed", "N", "G", "I", *COMPARED)} for c in results["cells"]]
    stages = json.loads((run_dir / "state.json").read_text())["stages"]
    losses = {k: v.get("train_loss") for k, v in stages.items()}
    grown = {p.name: p.read_text() for p in sorted((run_dir / "grown").glob("*.jsonl"))}
    return cells, losses, grown


@pytest.fixture(scope="module")
def uninterrupted(tiny_model_dir, tiny_data, tmp_path_factory):
    """The uninterrupted run (once per session, shared by xdist workers), started in the
    background so that it overlaps the run the test kills; call it to wait for its run dir."""
    def build(folder):
        result = subprocess.run(restlm_cmd("run", *set_args(overrides(tiny_model_dir, tiny_data, folder / "whole"))),
                                env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=400)
        assert result.returncode == 0, result.stderr[-2000:]

    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(build_once, tmp_path_factory, "resume_uninterrupted", build)
        yield lambda: future.result() / "whole"


@pytest.mark.parametrize("kill_after", [3, 12])  # after SFT; inside the second trajectory
def test_killed_run_resumes_to_the_same_results(tiny_model_dir, tiny_data, tmp_path, uninterrupted, kill_after):
    killed = tmp_path / "killed"
    # the run to kill runs beside the uninterrupted one (same env: one thread each)
    victim = subprocess.Popen(restlm_cmd("run", *set_args(overrides(tiny_model_dir, tiny_data, killed))),
                              env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while stage_count(killed) < kill_after and victim.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
    finally:
        if victim.poll() is None:
            victim.kill()
    done_before_kill = stage_count(killed)
    assert kill_after <= done_before_kill < STAGES, "the run was not killed part way"
    assert not (killed / "results.json").exists()
    assert "pid" in (killed / ".lock").read_text()  # the dead process's lock file stays; its lock does not

    resumed = run_cli("run", "--resume", str(killed))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    cells, losses, grown = comparable(killed)
    ref_cells, ref_losses, ref_grown = comparable(uninterrupted())
    assert len(cells) == 2 * 2 * (1 + 2 * 2)
    assert cells == ref_cells  # exactly: same floats, not approximately
    assert losses == ref_losses
    assert grown == ref_grown
    assert checkpoints(killed) == checkpoints(uninterrupted())  # best + latest per trajectory, none lost
    # the resumed run logged each stage once and the stages it skipped are still there
    metrics = [json.loads(line)["stage"] for line in (killed / "metrics.jsonl").read_text().splitlines()]
    assert len(metrics) == len(set(metrics)) == STAGES
    # only the stages the killed process had not finished were printed by the resumed one
    printed = [line for line in resumed.stdout.splitlines() if line.startswith("[")]
    assert len(printed) == STAGES - done_before_kill


def make_run_dir(tiny_model_dir, tiny_data, path) -> RunDir:
    """A run directory as `restlm run` leaves it right after it starts; the caller holds its lock."""
    config = load_config(None, tiny_overrides(tiny_model_dir, tiny_data["train"], tiny_data["dev"], path))
    run = RunDir(path)
    run.create(to_dict(config))
    return run


def test_locked_run_dir_is_refused(tiny_model_dir, tiny_data, tmp_path):
    path = tmp_path / "run"
    holder = make_run_dir(tiny_model_dir, tiny_data, path)  # this test process holds the run now
    before = {p: p.read_bytes() for p in path.rglob("*") if p.is_file()}
    try:
        result = run_cli("run", "--resume", str(path))
    finally:
        holder._lock_handle.close()
    assert result.returncode == 2
    lines = stderr_lines(result.stderr)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"restlm: error: {path}: in use by pid {os.getpid()}")
    after = {p: p.read_bytes() for p in path.rglob("*") if p.is_file()}
    assert after == before  # the refused process wrote nothing


def test_output_dir_that_holds_a_run_is_refused(tiny_model_dir, tiny_data, tmp_path, capfd):
    path = tmp_path / "run"
    make_run_dir(tiny_model_dir, tiny_data, path)._lock_handle.close()
    before = {p: p.read_bytes() for p in path.rglob("*") if p.is_file()}
    capfd.readouterr()
    assert cli.main(["run", *set_args(tiny_overrides(tiny_model_dir, tiny_data["train"], tiny_data["dev"], path))]) == 2
    captured = capfd.readouterr()
    lines = stderr_lines(captured.err)
    assert len(lines) == 1, captured.err  # refused before the model loads: not even a progress bar
    assert lines[0].startswith(f"restlm: error: {path}: already holds a run; resume it with `restlm run --resume {path}`")
    assert {p: p.read_bytes() for p in path.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize("make", ["missing", "empty", "other files"])
def test_resume_without_a_run(tmp_path, capfd, make):
    path = tmp_path / "nothing"
    if make != "missing":
        path.mkdir()
    if make == "other files":
        (path / "notes.txt").write_text("hi")
    assert cli.main(["run", "--resume", str(path)]) == 2
    lines = stderr_lines(capfd.readouterr().err)
    assert lines == [f"restlm: error: {path}: no run to resume here (config.json is missing)"]
    assert path.exists() == (make != "missing")
    if path.exists():
        assert sorted(p.name for p in path.iterdir()) == ([] if make == "empty" else ["notes.txt"])


def test_resume_refuses_new_settings(tmp_path, capfd):
    assert cli.main(["run", "--resume", str(tmp_path), "--set", "rest.grow_steps=2"]) == 2
    lines = stderr_lines(capfd.readouterr().err)
    assert len(lines) == 1 and lines[0].startswith("restlm: error: --resume takes the run's own config; drop --config/--set")


def test_resume_of_a_run_killed_while_being_created(tiny_model_dir, tiny_data, tmp_path, capfd):
    # killed inside RunDir.create: config.json written, state.json not yet
    path = tmp_path / "half"
    config = load_config(None, tiny_overrides(tiny_model_dir, tiny_data["train"], tiny_data["dev"], path,
                                              rest__grow_steps=0, rest__grow_sizes="[8]"))
    make_run_dir(tiny_model_dir, tiny_data, path)._lock_handle.close()
    (path / "config.json").write_text(json.dumps(to_dict(config)))
    (path / "state.json").unlink()
    assert cli.main(["run", "--resume", str(path)]) == 0, capfd.readouterr().err
    stages = json.loads((path / "state.json").read_text())["stages"]
    assert {layout.MAJORITY, layout.seed_stage(0, "untrained"), layout.seed_stage(0, "sft")} <= set(stages)
    assert (path / "results.json").exists()


def test_finished_run_can_be_resumed_in_the_same_process(tiny_model_dir, tiny_data, tmp_path, capfd):
    path = tmp_path / "run"
    overrides = tiny_overrides(tiny_model_dir, tiny_data["train"], tiny_data["dev"], path,
                               rest__grow_steps=0, rest__grow_sizes="[8]")
    assert cli.main(["run", *set_args(overrides)]) == 0
    assert cli.main(["run", "--resume", str(path)]) == 0, capfd.readouterr().err


@pytest.mark.parametrize("kept", ["records alone", "all but the checkpoints"])
def test_a_run_directory_that_lost_files_is_refused_in_one_line(uninterrupted, tmp_path, capfd, kept):
    """A copy of config.json and state.json alone (the grown sets and NLL records gone), or a copy without the
    checkpoints whose next stage must load them: each is refused in one line naming the missing file."""
    import shutil

    whole, path = uninterrupted(), tmp_path / "copy"
    path.mkdir()
    for name in ("config.json", "state.json", "inputs.json"):
        shutil.copy(whole / name, path / name)
    if kept == "all but the checkpoints":
        for folder in ("grown", "train_nll"):
            shutil.copytree(whole / folder, path / folder)
        state = json.loads((path / "state.json").read_text())
        last = list(state["stages"])[-1]  # forgotten: resuming runs it again, from its predecessor's weights
        del state["stages"][last]
        (path / "state.json").write_text(json.dumps(state))
    assert cli.main(["run", "--resume", str(path)]) == 2
    lines = stderr_lines(capfd.readouterr().err)
    assert len(lines) == 1 and "the run directory has lost files" in lines[0], lines
    if kept == "records alone":
        assert lines[0].startswith(f"restlm: error: {path}/") and ".jsonl: missing, though stage " in lines[0]
    else:
        assert lines[0].startswith(f"restlm: error: {path / 'checkpoints'}/") and ": no checkpoint, though stage" in lines[0]
