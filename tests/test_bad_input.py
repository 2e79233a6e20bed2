"""Bad input through the `restlm run` command: each case exits 2 with exactly one stderr line
that names the file:line or the config key, and creates no run directory (nothing half-written).

Most cases call `cli.main` in this process (stderr captured at the file descriptor, so warnings
and C-level writes count too); two go through a real `python -m restlm.cli` subprocess, one with
HF_HUB_OFFLINE=1 for a hub id that is not cached.
"""
from __future__ import annotations

import pytest

from helpers import run_cli, set_args, stderr_lines, tiny_overrides
from restlm import cli

HEADER = "sentence1\tsentence2\tlabel\n"
FILES = {
    "short_row.tsv": HEADER + "the cat\ta dog\t1\nthe cat sat\ta dog\n",
    "no_label.tsv": "sentence1\tsentence2\tquality\nthe cat\ta dog\t1\n",
    "named.tsv": HEADER + "the cat\ta dog\tpos\nthe cat\ta dog\tneg\nthe cat\ta dog\tmaybe\n",
    "empty.tsv": "",
    "header_only.tsv": HEADER,
    "label_two.tsv": HEADER + "the cat\ta dog\t1\nthe cat\ta dog\t2\n",
    "broken.jsonl": '{"sentence1": "the cat", "sentence2": "a dog", "label": 1}\n{"sentence1": "the cat",\n',
    "empty_text.tsv": HEADER + "the cat\ta dog\t1\n \ta dog\t0\n",
}

# (case, overrides beyond the tiny run, what the one line must hold)
CASES = [
    ("malformed tsv row", {"data.train": "short_row.tsv"}, "short_row.tsv:3: 2 fields where the header has 3"),
    ("missing column", {"data.train": "no_label.tsv"}, "no_label.tsv:1: missing column 'label'"),
    ("label outside label set", {"data.train": "named.tsv", "data.dev": "named.tsv", "data.label_set": "[neg,pos]"},
     "named.tsv:4: label 'maybe' in column 'label' is not in the label set"),
    ("empty data file", {"data.train": "empty.tsv"}, "empty.tsv:1: no data rows"),
    ("header only", {"data.dev": "header_only.tsv"}, "header_only.tsv:2: no data rows"),
    ("malformed jsonl", {"data.train": "broken.jsonl"}, "broken.jsonl:2: malformed JSON"),
    ("empty text", {"data.train": "empty_text.tsv"}, "empty_text.tsv:3: empty text in column 'sentence1'"),
    ("missing data file", {"data.train": "nothere.tsv"}, "nothere.tsv: cannot read"),
    ("label beyond num_labels", {"data.train": "label_two.tsv"}, "label_two.tsv:3: label 2 is outside 0..1 (model.num_labels)"),
    ("unknown config key", {"rest.grow_stpes": "2"}, "config key 'rest.grow_stpes': unknown key"),
    ("wrong type", {"train.epochs": "many"}, "config key 'train.epochs': expected int, got str 'many'"),
    ("bad choice", {"rest.sampling": "beam"}, "config key 'rest.sampling': must be one of argmax, sample"),
    ("model path does not exist", {"model.name": "/nonexistent/tiny-model"},
     "model '/nonexistent/tiny-model': no such file or directory: /nonexistent/tiny-model"),
]


@pytest.fixture
def bad_files(tmp_path):
    for name, text in FILES.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def overrides_for(tiny_model_dir, tiny_data, folder, extra: dict) -> list[str]:
    values = tiny_overrides(tiny_model_dir, tiny_data["train"], tiny_data["dev"], folder / "run")
    for key, value in extra.items():
        if key in ("data.train", "data.dev"):
            value = str(folder / value)
        values = [v for v in values if not v.startswith(key + "=")] + [f"{key}={value}"]
    return values


def assert_nothing_written(folder):
    assert not (folder / "run").exists()
    assert sorted(p.name for p in folder.iterdir()) == sorted(FILES)


@pytest.mark.parametrize("case, extra, expected", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_exit_2(tiny_model_dir, tiny_data, bad_files, capfd, case, extra, expected):
    capfd.readouterr()
    code = cli.main(["run", *set_args(overrides_for(tiny_model_dir, tiny_data, bad_files, extra))])
    captured = capfd.readouterr()
    assert code == 2
    lines = stderr_lines(captured.err)
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("restlm: error: ") and expected in lines[0]
    if "data." in " ".join(extra):
        assert str(bad_files) in lines[0]  # the full path, so the user can open it
    assert "Traceback" not in captured.err and captured.out == ""
    assert_nothing_written(bad_files)


def test_malformed_row_through_the_real_command(tiny_model_dir, tiny_data, bad_files):
    result = run_cli("run", *set_args(overrides_for(tiny_model_dir, tiny_data, bad_files, {"data.train": "short_row.tsv"})))
    assert result.returncode == 2
    assert stderr_lines(result.stderr) == [
        f"restlm: error: {bad_files / 'short_row.tsv'}:3: 2 fields where the header has 3 (tab-separated)"]
    assert_nothing_written(bad_files)


def test_offline_hub_id_through_the_real_command(tiny_model_dir, tiny_data, bad_files):
    extra = {"model.name": "albert/albert-base-v2"}
    result = run_cli("run", *set_args(overrides_for(tiny_model_dir, tiny_data, bad_files, extra)), HF_HUB_OFFLINE="1")
    assert result.returncode == 2
    lines = stderr_lines(result.stderr)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("restlm: error: model 'albert/albert-base-v2': not a local folder and not in the Hugging Face cache")
    assert "HF_HUB_OFFLINE is set" in lines[0]
    assert_nothing_written(bad_files)


def test_bad_config_file_through_cli(tmp_path, capfd):
    path = tmp_path / "c.yaml"
    path.write_text("rest:\n  grow_steps: [1\n")
    assert cli.main(["run", "--config", str(path), "--set", f"run.output_dir={tmp_path / 'run'}"]) == 2
    lines = stderr_lines(capfd.readouterr().err)
    assert len(lines) == 1 and f"{path}:" in lines[0] and "malformed config file" in lines[0]
    assert not (tmp_path / "run").exists()
