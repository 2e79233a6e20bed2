"""Breaking the run directory and the output folders on purpose (issue 15: data loss, races, NaN,
changed inputs, full disks). Each case asserts the exit code, the one stderr line, and what is on
disk afterwards: a folder of the user's survives byte for byte, nothing half-written is left.
"""
from __future__ import annotations

import errno
import json
import math
import os
from pathlib import Path

import pytest
import torch
from helpers import cue_pairs, set_args, stderr_lines, tiny_overrides, write_tsv

from restlm import cli
from restlm import run_layout as layout
from restlm.atomic_files import (
    replace_folder,
    sweep_temp_files,
    write_atomic,
    write_json,
)
from restlm.errors import DiskFullError, NonFiniteError, RunDirError
from restlm.runs import RunDir

SFT = layout.seed_stage(0, "sft")


def snapshot(folder: Path) -> dict:
    """Every file under `folder` with its bytes: equal snapshots mean nothing was written or deleted."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def users_folder(tmp_path: Path, config: bool = False) -> Path:
    """A folder holding someone's files (a model folder when `config`: it has a config.json)."""
    folder = tmp_path / "precious"
    folder.mkdir()
    (folder / "notes.txt").write_text("a week of work\n")
    if config:
        (folder / "config.json").write_text('{"model_type": "bert"}\n')
    return folder


def run_args(tiny_model_dir, tiny_data, output_dir, **extra) -> list[str]:
    return ["run", *set_args(tiny_overrides(tiny_model_dir, tiny_data["train"], tiny_data["dev"], output_dir, **extra))]


def preference_file(tmp_path: Path, n: int = 12) -> Path:
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps({"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected}) + "\n"
                            for p in cue_pairs(n, seed=0)))
    return path


# ---------------------------------------------------------------- data loss: --out and --output-dir
def out_commands(tmp_path, tiny_model_dir, reward_bert_dir):
    """(name, argv without --out) of every command that writes an output folder."""
    pairs = preference_file(tmp_path)
    sft_rows = tmp_path / "sft.jsonl"
    sft_rows.write_text('{"prompt": "the cat", "completion": "sat"}\n')
    return {
        "reward-model": ["reward-model", "--model", str(reward_bert_dir), "--data", str(pairs), "--eval-pairs", "4"],
        "sentiment-model": ["sentiment-model", "--role", "reward", "--model", str(tiny_model_dir), "--limit", "8"],
        "sft": ["sft", "--model", str(tiny_model_dir), "--data", str(sft_rows)],
        "dpo": ["dpo", "--model", str(tiny_model_dir), "--data", str(pairs)],
        "ppo": ["ppo", "--model", str(tiny_model_dir), "--prompts", str(sft_rows), "--reward", "chrf"],
    }


@pytest.mark.parametrize("command", ["reward-model", "sentiment-model", "sft", "dpo", "ppo"])
def test_an_out_folder_with_files_survives_every_command(command, tmp_path, tiny_model_dir, reward_bert_dir, capfd):
    folder = users_folder(tmp_path)
    argv = out_commands(tmp_path, tiny_model_dir, reward_bert_dir)[command]
    before = snapshot(folder)
    assert cli.main(argv + ["--out", str(folder)]) == 2
    lines = stderr_lines(capfd.readouterr().err)
    assert lines == [f"restlm: error: {folder}: already exists and is not empty; choose another folder or remove it"]
    assert snapshot(folder) == before
    assert not list(tmp_path.glob(".precious*"))  # no staging folder left beside it


@pytest.mark.parametrize("config", [False, True], ids=["other files", "a model folder"])
def test_run_refuses_a_folder_that_holds_no_run(config, tmp_path, tiny_model_dir, tiny_data, capfd):
    folder = users_folder(tmp_path, config=config)
    before = snapshot(folder)
    assert cli.main(run_args(tiny_model_dir, tiny_data, folder)) == 2
    lines = stderr_lines(capfd.readouterr().err)
    assert lines == [f"restlm: error: {folder}: is not empty and holds no restlm run; pick another run.output_dir "
                     "(a run never writes into a folder of other files)"]
    assert snapshot(folder) == before


def test_run_refuses_an_output_dir_that_is_a_file(tmp_path, tiny_model_dir, tiny_data, capfd):
    target = tmp_path / "results.txt"
    target.write_text("keep me\n")
    assert cli.main(run_args(tiny_model_dir, tiny_data, target)) == 2
    assert stderr_lines(capfd.readouterr().err) == [
        f"restlm: error: {target}: is a file, not a folder; pick another run.output_dir"]
    assert target.read_text() == "keep me\n" and sorted(p.name for p in tmp_path.iterdir()) == ["results.txt"]


def test_resume_refuses_a_model_folder(tmp_path, capfd):
    folder = users_folder(tmp_path, config=True)
    before = snapshot(folder)
    assert cli.main(["run", "--resume", str(folder)]) == 2
    assert "not a run folder" in stderr_lines(capfd.readouterr().err)[0]
    assert snapshot(folder) == before


# ---------------------------------------------------------------- the lock race, made deterministic
def test_a_run_created_while_another_loaded_its_data_is_never_overwritten(tmp_path, tiny_model_dir, tiny_data,
                                                                          monkeypatch, capfd):
    """Run B looks at the folder (empty), then loads data and model; meanwhile run A creates its
    state there and finishes. B must refuse when it locks, and leave A's files as they were."""
    from restlm.experiment import Experiment

    path = tmp_path / "run"
    original_load = Experiment.load_data
    other = {}

    def load_then_let_the_other_run_in(self):
        original_load(self)
        run_a = RunDir(path).create({"run": "A"}, inputs={})
        write_json(path / "results.json", {"run": "A"})
        run_a.close()
        other.update(snapshot(path))

    monkeypatch.setattr(Experiment, "load_data", load_then_let_the_other_run_in)
    assert cli.main(run_args(tiny_model_dir, tiny_data, path)) == 2
    assert stderr_lines(capfd.readouterr().err) == [
        f"restlm: error: {path}: already holds a run; resume it with `restlm run --resume {path}` "
        "or pick another run.output_dir"]
    assert snapshot(path) == other and json.loads((path / "config.json").read_text()) == {"run": "A"}


def test_create_decides_under_the_lock(tmp_path):
    """The decision is made again after the lock is taken, not reused from an earlier look."""
    path = tmp_path / "run"
    late = RunDir(path)
    late.check_new()  # looked while the folder was empty
    RunDir(path).create({"run": "A"}).close()
    with pytest.raises(RunDirError, match="already holds a run"):
        late.create({"run": "B"})
    assert json.loads((path / "config.json").read_text()) == {"run": "A"}


# ---------------------------------------------------------------- NaN and infinite losses
def test_a_nan_loss_stops_the_run_with_state_saved_and_no_nan_in_json(tmp_path, tiny_model_dir, tiny_data, capfd):
    path = tmp_path / "run"
    assert cli.main(run_args(tiny_model_dir, tiny_data, path, train__learning_rate="1e6")) == 2
    lines = [line for line in stderr_lines(capfd.readouterr().err) if not line.startswith(SFT + ": ")]  # its bar
    assert len(lines) == 1 and lines[0].startswith(f"restlm: error: stage '{SFT}': the training loss is nan")
    state = json.loads((path / "state.json").read_text())
    assert layout.seed_stage(0, "untrained") in state["stages"] and SFT not in state["stages"]  # earlier stages kept
    assert not RunDir(path).checkpoint_dir(SFT).exists()
    for file in path.rglob("*.json*"):
        assert "NaN" not in file.read_text() and "Infinity" not in file.read_text(), file


def test_non_finite_values_never_reach_json(tmp_path):
    write_json(tmp_path / "x.json", {"loss": float("nan"), "kl": [1.0, float("inf")], "ok": 0.5})
    assert json.loads((tmp_path / "x.json").read_text()) == {"loss": None, "kl": [1.0, None], "ok": 0.5}


def test_a_model_with_non_finite_weights_is_never_saved(tmp_path):
    from tiny_models import tiny_llama, tiny_tokenizer

    from restlm.policies.lora import save_merged

    tokenizer = tiny_tokenizer()
    model = tiny_llama(len(tokenizer))
    with torch.no_grad():
        next(model.parameters())[0, 0] = math.inf
    with pytest.raises(NonFiniteError, match="is not finite"):
        save_merged(model, tokenizer, tmp_path / "model")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- inputs changed between a kill and its resume
@pytest.mark.parametrize("edit", ["one label flipped", "rows dropped"])
def test_resume_refuses_changed_inputs_and_names_the_file(edit, tmp_path, tiny_model_dir, tiny_data, capfd):
    train = write_tsv(tmp_path / "train.tsv", tiny_data["train_rows"])
    path = tmp_path / "run"
    overrides = tiny_overrides(tiny_model_dir, train, tiny_data["dev"], path, rest__grow_steps=0,
                               rest__grow_sizes="[8]")
    assert cli.main(["run", *set_args(overrides)]) == 0
    rows = list(tiny_data["train_rows"])
    rows = [(*rows[0][:2], 1 - rows[0][2]), *rows[1:]] if edit == "one label flipped" else rows[:10]
    write_tsv(train, rows)
    capfd.readouterr()
    before = snapshot(path)
    assert cli.main(["run", "--resume", str(path)]) == 2
    lines = stderr_lines(capfd.readouterr().err)
    assert len(lines) == 1 and lines[0].startswith(f"restlm: error: {train}: input 'train' changed since the run started")
    assert f"(40 rows then, {40 if edit == 'one label flipped' else 10} now)" in lines[0]
    assert snapshot(path) == before


# ---------------------------------------------------------------- temp files: never left, swept on resume
def test_a_failed_write_leaves_neither_the_file_nor_a_temp_file(tmp_path, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    write_atomic(tmp_path / "state.json", "old\n")
    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(DiskFullError, match="no space left on the device"):
        write_atomic(tmp_path / "state.json", "new\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]
    assert (tmp_path / "state.json").read_text() == "old\n"


def test_a_full_disk_during_a_run_is_one_line_exit_1(tmp_path, tiny_model_dir, tiny_data, monkeypatch, capfd):
    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    path = tmp_path / "run"
    assert cli.main(run_args(tiny_model_dir, tiny_data, path)) == 1
    lines = stderr_lines(capfd.readouterr().err)
    assert lines == [f"restlm: error: {path / 'config.json'}: no space left on the device; nothing half-written was kept"]
    assert [p.name for p in path.iterdir()] == [".lock"]  # no config, no state, no temp file


def test_a_failed_folder_save_keeps_the_old_folder_and_no_temp(tmp_path):
    old = tmp_path / "checkpoint"
    old.mkdir()
    (old / "model.safetensors").write_text("old weights")

    def crash(folder):
        folder.mkdir()
        (folder / "model.safetensors").write_text("half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(DiskFullError):
        replace_folder(old, crash)
    assert snapshot(tmp_path) == {"checkpoint/model.safetensors": b"old weights"}


def test_resume_sweeps_the_temp_files_a_kill_left(tmp_path):
    path = tmp_path / "run"
    RunDir(path).create({"run": "A"}).close()
    (path / ".state.json.x1y2.tmp").write_text("half")
    RunDir(path).checkpoint_dir(SFT).parent.mkdir(parents=True)
    RunDir(path).checkpoint_dir(SFT).with_name(".sft.tmp").mkdir()
    (RunDir(path).checkpoint_dir(SFT).with_name(".sft.tmp") / "model.safetensors").write_text("half")
    run = RunDir(path)
    run.resume()
    run.close()
    assert sorted(snapshot(path)) == [".lock", "config.json", "state.json"]
    assert sweep_temp_files(path) == 0


def test_a_kill_between_the_renames_of_a_folder_replace_loses_nothing(tmp_path, monkeypatch):
    """replace_folder moves the older folder aside, then renames the new one in: killed between the two, the
    older folder waits aside and the sweep of the resume puts it back."""
    import os

    old = tmp_path / "checkpoint"
    old.mkdir()
    (old / "model.safetensors").write_text("old weights")
    renames = []
    real_replace = os.replace

    def killed_at_the_second(src, dst):
        renames.append((Path(src).name, Path(dst).name))
        if len(renames) == 2:
            raise KeyboardInterrupt  # the process dies here
        real_replace(src, dst)

    monkeypatch.setattr("restlm.atomic_files.os.replace", killed_at_the_second)
    with pytest.raises(KeyboardInterrupt):
        replace_folder(old, lambda folder: (folder.mkdir(), (folder / "model.safetensors").write_text("new")))
    monkeypatch.undo()
    assert renames == [("checkpoint", ".checkpoint.old.tmp"), (".checkpoint.tmp", "checkpoint")]
    assert not old.exists()
    assert sweep_temp_files(tmp_path) == 1
    assert snapshot(tmp_path) == {"checkpoint/model.safetensors": b"old weights"}
    replace_folder(old, lambda folder: (folder.mkdir(), (folder / "model.safetensors").write_text("new")))
    assert snapshot(tmp_path) == {"checkpoint/model.safetensors": b"new"}


# ---------------------------------------------------------------- the command line itself
def test_a_closed_pipe_ends_quietly(tmp_path):
    """`restlm config | head`: the reader is gone before restlm writes; no traceback, SIGPIPE's exit code."""
    import subprocess

    from helpers import cli_env, restlm_cmd

    process = subprocess.Popen(restlm_cmd("config"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env())
    process.stdout.close()
    _, err = process.communicate(timeout=120)
    assert err.decode() == "" and process.returncode == 141


@pytest.mark.parametrize("text", ["{not json", b"\xff\xfe not utf-8"], ids=["malformed", "not utf-8"])
def test_report_of_an_unreadable_results_file_is_one_line(text, tmp_path, capfd):
    results = tmp_path / "results.json"
    results.write_bytes(text if isinstance(text, bytes) else text.encode())
    assert cli.main(["report", str(tmp_path)]) == 2
    lines = stderr_lines(capfd.readouterr().err)
    assert len(lines) == 1 and lines[0].startswith(f"restlm: error: {results}: not a results file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


@pytest.mark.parametrize("command", ["sft", "ppo"])
def test_a_diverging_sft_or_ppo_saves_nothing(command, tmp_path, reward_llama_dir, capfd):
    """A learning rate so high that the loss goes NaN: one line naming the loss, no --out folder."""
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps({"prompt": f"say {w}", "completion": f"{w} {w}", "target": f"{w} {w}"}) + "\n"
                            for w in ("cat", "dog", "bird", "fish")))
    out = tmp_path / "out"
    argv = {"sft": ["sft", "--data", str(rows), "--batch-size", "2", "--epochs", "3"],
            "ppo": ["ppo", "--prompts", str(rows), "--reward", "chrf", "--total-steps", "6", "--batch-size", "2",
                    "--mini-batch-size", "2", "--max-new-tokens", "4"]}[command]
    assert cli.main([*argv, "--model", str(reward_llama_dir), "--learning-rate", "1e12", "--out", str(out)]) == 2
    lines = stderr_lines(capfd.readouterr().err)
    assert len(lines) == 1 and ("is not finite" in lines[0] or "loss is nan" in lines[0]), lines
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.jsonl"]
