"""Malformed input to every command (issue 15, items 8 and 10): each case exits 2 with one stderr
line naming the key, flag, file or line at fault, and writes nothing. The cases are tables, so a
new reader or flag gets a new row, not a new test.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import cue_pairs, set_args, stderr_lines, tiny_overrides
from restlm import cli


def assert_one_line_exit_2(code: int, err: str, expected: str) -> str:
    lines = stderr_lines(err)
    assert code == 2, err
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert expected in lines[0], lines[0]
    return lines[0]


def exit_code(argv: list[str]) -> int:
    """cli.main's return code, or the code of the SystemExit that argparse raises for a bad flag."""
    try:
        return cli.main(argv)
    except SystemExit as stop:
        return stop.code


def files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


# ---------------------------------------------------------------- config values of `restlm run`
# (case, --set overrides beyond the tiny run, the key the one line must name)
RUN_VALUES = [
    ("nan learning rate", {"train.learning_rate": ".nan"}, "train.learning_rate"),
    ("inf learning rate", {"train.learning_rate": ".inf"}, "train.learning_rate"),
    ("negative learning rate", {"train.learning_rate": "-1e-5"}, "train.learning_rate"),
    ("zero learning rate", {"train.learning_rate": "0"}, "train.learning_rate"),
    ("nan weight decay", {"train.weight_decay": ".nan"}, "train.weight_decay"),
    ("negative weight decay", {"train.weight_decay": "-0.1"}, "train.weight_decay"),
    ("warmup ratio above 1", {"train.warmup_ratio": "5"}, "train.warmup_ratio"),
    ("negative warmup ratio", {"train.warmup_ratio": "-0.1"}, "train.warmup_ratio"),
    ("nan improve learning rate", {"rest.improve_learning_rate": ".nan"}, "rest.improve_learning_rate"),
    ("negative improve learning rate", {"rest.improve_learning_rate": "-2e-5"}, "rest.improve_learning_rate"),
    ("nan temperature", {"rest.sampling": "sample", "rest.temperature": ".nan"}, "rest.temperature"),
    ("inf temperature", {"rest.sampling": "sample", "rest.temperature": ".inf"}, "rest.temperature"),
    ("nan top_p", {"rest.top_p": ".nan"}, "rest.top_p"),
    ("nan lr decay", {"rest.lr_decay": ".nan"}, "rest.lr_decay"),
    ("nan kl coefficient", {"rest.improve_kl_coef": ".nan"}, "rest.improve_kl_coef"),
    ("nan threshold", {"rest.threshold": "rising", "rest.normalise_reward": "true", "rest.thresholds": "[.nan]"},
     "rest.thresholds[0]"),
    ("rising with no thresholds", {"rest.threshold": "rising", "rest.normalise_reward": "true", "rest.thresholds": "[]"},
     "rest.thresholds"),
    ("rising threshold above 1", {"rest.threshold": "rising", "rest.normalise_reward": "true",
                                  "rest.thresholds": "[0.5, 1.5]"}, "rest.thresholds[1]"),
    ("percentile above 100", {"rest.threshold": "percentile", "rest.thresholds": "[50, 150]"}, "rest.thresholds[1]"),
    ("percentile with no thresholds", {"rest.threshold": "percentile", "rest.thresholds": "[]"}, "rest.thresholds"),
    ("nan binary reward threshold", {"rest.binary_reward_threshold": ".nan"}, "rest.binary_reward_threshold"),
    ("max_length 1", {"model.max_length": "1"}, "model.max_length"),
    ("max_length beyond the model's positions", {"model.max_length": "100000"}, "model.max_length"),
    ("reward spec ':'", {"rest.reward": ":"}, "rest.reward"),
    ("reward spec 'module:'", {"rest.reward": "os:"}, "rest.reward"),
    ("reward spec ':function'", {"rest.reward": ":f"}, "rest.reward"),
    ("reward names a non-function", {"rest.reward": "os:sep"}, "rest.reward"),
    ("nan max_unparsed", {"baselines.zero_shot.max_unparsed": ".nan"}, "baselines.zero_shot.max_unparsed"),
    ("max_unparsed above 1", {"baselines.zero_shot.max_unparsed": "2"}, "baselines.zero_shot.max_unparsed"),
    ("zero timeout", {"baselines.zero_shot.timeout_s": "0"}, "baselines.zero_shot.timeout_s"),
    ("section given a scalar", {"rest": "3"}, "rest"),
]


@pytest.mark.parametrize("case, extra, key", RUN_VALUES, ids=[c[0] for c in RUN_VALUES])
def test_a_bad_config_value_is_one_line_and_exit_2(case, extra, key, tiny_model_dir, tiny_data, tmp_path, capfd):
    values = tiny_overrides(tiny_model_dir, tiny_data["train"], tiny_data["dev"], tmp_path / "run")
    values = [v for v in values if v.split("=", 1)[0] not in extra] + [f"{k}={v}" for k, v in extra.items()]
    capfd.readouterr()
    code = cli.main(["run", *set_args(values)])
    assert_one_line_exit_2(code, capfd.readouterr().err, f"'{key}'")
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------- config files
CONFIG_FILES = [
    ("top level a list", "c.yaml", b"- a\n- b\n", "a mapping"),
    ("top level a scalar", "c.yaml", b"42\n", "a mapping"),
    ("top level a string", "c.yaml", b"just some words\n", "a mapping"),
    ("garbage", "c.yaml", b"{{{ :\n", "malformed config file"),
    ("json list", "c.json", b"[1, 2]\n", "a mapping"),
    ("json garbage", "c.json", b'{"rest": \n', "malformed config file"),
    ("not UTF-8", "c.yaml", b"rest:\n  reward: \xff\xfe\n", "not UTF-8"),
    ("a folder", "c.yaml", None, "cannot read config file"),
]


@pytest.mark.parametrize("case, name, content, expected", CONFIG_FILES, ids=[c[0] for c in CONFIG_FILES])
def test_a_bad_config_file_is_one_line_and_exit_2(case, name, content, expected, tmp_path, capfd):
    path = tmp_path / name
    path.mkdir() if content is None else path.write_bytes(content)
    for command in (["run", "--output-dir", str(tmp_path / "run")], ["config"]):
        capfd.readouterr()
        code = cli.main([command[0], "--config", str(path), *command[1:]])
        assert str(path) in assert_one_line_exit_2(code, capfd.readouterr().err, expected)
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------- model folders
def broken_model(tmp_path: Path, source: Path, keep) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    for path in source.iterdir():
        if path.is_file() and keep(path.name):
            (folder / path.name).write_bytes(path.read_bytes())
    return folder


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json", "vocab.json",
                   "merges.txt", "spiece.model", "tokenizer.model")
MODEL_FOLDERS = [
    ("no tokenizer files", lambda name: name not in TOKENIZER_FILES, "no tokenizer"),
    ("no weights", lambda name: not name.endswith((".safetensors", ".bin")), "model"),
    ("only a config", lambda name: name == "config.json", "model"),
]


@pytest.mark.parametrize("case, keep, expected", MODEL_FOLDERS, ids=[c[0] for c in MODEL_FOLDERS])
def test_a_broken_model_folder_is_one_line_and_exit_2(case, keep, expected, tiny_model_dir, tiny_data, tmp_path, capfd):
    folder = broken_model(tmp_path, Path(tiny_model_dir), keep)
    values = tiny_overrides(folder, tiny_data["train"], tiny_data["dev"], tmp_path / "run")
    capfd.readouterr()
    code = cli.main(["run", *set_args(values)])
    line = assert_one_line_exit_2(code, capfd.readouterr().err, expected)
    assert f"model '{folder}'" in line
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------- data files
HEADER_FILES = [
    ("tsv label twice", "d.tsv", "sentence1\tsentence2\tlabel\tlabel\nthe cat\ta dog\t1\t0\n", "'label'"),
    ("csv text twice", "d.csv", "sentence1,sentence1,sentence2,label\na,b,c,1\n", "'sentence1'"),
    ("jsonl key twice", "d.jsonl", '{"sentence1": "a", "sentence2": "b", "label": 1, "label": 0}\n', "'label'"),
]


@pytest.mark.parametrize("case, name, text, column", HEADER_FILES, ids=[c[0] for c in HEADER_FILES])
def test_a_repeated_column_is_refused_naming_file_and_line(case, name, text, column, tiny_model_dir, tiny_data,
                                                           tmp_path, capfd):
    path = tmp_path / name
    path.write_text(text)
    values = tiny_overrides(tiny_model_dir, path, tiny_data["dev"], tmp_path / "run")
    capfd.readouterr()
    code = cli.main(["run", *set_args(values)])
    line = assert_one_line_exit_2(code, capfd.readouterr().err, f"{path}:1: ")
    assert "twice" in line and column in line
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------- flags of the other commands
def pairs_file(tmp_path: Path, n: int) -> Path:
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps({"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected}) + "\n"
                            for p in cue_pairs(n, seed=0)))
    return path


def completions_file(tmp_path: Path) -> Path:
    path = tmp_path / "sft.jsonl"
    path.write_text('{"prompt": "the cat", "completion": "sat"}\n' * 4)
    return path


# (case, command, its flags (PAIRS, PAIRS3, ROWS, PROMPTS stand for files), what the line names)
FLAGS = [
    ("reward-model --eval-pairs 0", "reward-model", ["--data", "PAIRS", "--eval-pairs", "0"], "--eval-pairs"),
    ("reward-model --eval-pairs -3", "reward-model", ["--data", "PAIRS", "--eval-pairs", "-3"], "--eval-pairs"),
    ("reward-model --train-pairs 0", "reward-model", ["--data", "PAIRS", "--eval-pairs", "4", "--train-pairs", "0"],
     "--train-pairs"),
    ("reward-model --batch-size 0", "reward-model", ["--data", "PAIRS", "--eval-pairs", "4", "--batch-size", "0"],
     "--batch-size"),
    ("reward-model --epochs 0", "reward-model", ["--data", "PAIRS", "--eval-pairs", "4", "--epochs", "0"], "--epochs"),
    ("reward-model nan learning rate", "reward-model", ["--data", "PAIRS", "--eval-pairs", "4", "--learning-rate", "nan"],
     "--learning-rate"),
    ("reward-model warmup ratio 5", "reward-model", ["--data", "PAIRS", "--eval-pairs", "4", "--warmup-ratio", "5"],
     "--warmup-ratio"),
    ("reward-model three pairs", "reward-model", ["--data", "PAIRS3"], "PAIRS3"),  # 200 held out by default
    ("reward-model more held out than pairs", "reward-model", ["--data", "PAIRS", "--eval-pairs", "40"], "--eval-pairs"),
    ("reward-model --max-length 1", "reward-model", ["--data", "PAIRS", "--eval-pairs", "4", "--max-length", "1"],
     "--max-length"),
    ("reward-model nan spread penalty", "reward-model", ["--data", "PAIRS", "--eval-pairs", "4", "--ensemble", "2",
                                                         "--spread-penalty", "nan"], "--spread-penalty"),
    ("sentiment-model --limit 0", "sentiment-model", ["--role", "reward", "--limit", "0"], "--limit"),
    ("sft nan learning rate", "sft", ["--data", "ROWS", "--learning-rate", "nan"], "--learning-rate"),
    ("sft inf learning rate", "sft", ["--data", "ROWS", "--learning-rate", "inf"], "--learning-rate"),
    ("sft negative learning rate", "sft", ["--data", "ROWS", "--learning-rate", "-1"], "--learning-rate"),
    ("sft --epochs 0", "sft", ["--data", "ROWS", "--epochs", "0"], "--epochs"),
    ("sft --batch-size 0", "sft", ["--data", "ROWS", "--batch-size", "0"], "--batch-size"),
    ("sft warmup ratio 5", "sft", ["--data", "ROWS", "--warmup-ratio", "5"], "--warmup-ratio"),
    ("sft nan weight decay", "sft", ["--data", "ROWS", "--weight-decay", "nan"], "--weight-decay"),
    ("sft --max-length 0", "sft", ["--data", "ROWS", "--max-length", "0"], "--max-length"),
    ("sft --epochs many", "sft", ["--data", "ROWS", "--epochs", "many"], "--epochs"),
    ("dpo --beta 0", "dpo", ["--data", "PAIRS", "--beta", "0"], "--beta"),
    ("dpo nan beta", "dpo", ["--data", "PAIRS", "--beta", "nan"], "--beta"),
    ("dpo inf learning rate", "dpo", ["--data", "PAIRS", "--learning-rate", "inf"], "--learning-rate"),
    ("dpo unknown loss", "dpo", ["--data", "PAIRS", "--loss-type", "nope"], "--loss-type"),
    ("ppo nan learning rate", "ppo", ["--prompts", "PROMPTS", "--reward", "chrf", "--learning-rate", "nan"],
     "--learning-rate"),
    ("ppo inf clip range", "ppo", ["--prompts", "PROMPTS", "--reward", "chrf", "--clip-range", "inf"], "--clip-range"),
    ("ppo nan temperature", "ppo", ["--prompts", "PROMPTS", "--reward", "chrf", "--temperature", "nan"], "--temperature"),
    ("ppo nan kl coefficient", "ppo", ["--prompts", "PROMPTS", "--reward", "chrf", "--kl-coef", "nan"], "--kl-coef"),
    ("ppo --max-new-tokens 0", "ppo", ["--prompts", "PROMPTS", "--reward", "chrf", "--max-new-tokens", "0"],
     "--max-new-tokens"),
    ("ppo --total-steps 0", "ppo", ["--prompts", "PROMPTS", "--reward", "chrf", "--total-steps", "0"], "--total-steps"),
    ("ppo lam 2", "ppo", ["--prompts", "PROMPTS", "--reward", "chrf", "--lam", "2"], "--lam"),
    ("ppo reward ':'", "ppo", ["--prompts", "PROMPTS", "--reward", ":"], "reward"),
    ("ppo unknown flag", "ppo", ["--prompts", "PROMPTS", "--reward", "chrf", "--learning-rat", "1"], "--learning-rat"),
]


@pytest.mark.parametrize("case, command, flags, expected", FLAGS, ids=[c[0] for c in FLAGS])
def test_a_bad_flag_is_one_line_and_exit_2(case, command, flags, expected, tmp_path, tiny_model_dir, reward_bert_dir,
                                           reward_llama_dir, capfd):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / "pairs3.jsonl").write_text(pairs_file(inputs, 3).read_text())
    files = {"PAIRS": pairs_file(inputs, 12), "PAIRS3": inputs / "pairs3.jsonl", "ROWS": completions_file(inputs),
             "PROMPTS": inputs / "prompts.jsonl"}
    files["PROMPTS"].write_text('{"prompt": "the cat", "target": "sat"}\n' * 4)
    model = {"reward-model": reward_bert_dir, "sentiment-model": tiny_model_dir}.get(command, reward_llama_dir)
    argv = [command, "--model", str(model), "--out", str(tmp_path / "out"),
            *[str(files.get(flag, flag)) for flag in flags]]
    before = files_under(tmp_path)
    capfd.readouterr()
    code = exit_code(argv)
    assert_one_line_exit_2(code, capfd.readouterr().err, str(files.get(expected, expected)))
    assert files_under(tmp_path) == before
