"""The generic `prompts` task: the user's own prompts file, a reward function in the user's own
module, no Python beyond it: `restlm run` end to end on a tiny random Llama, and its refusals."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from helpers import set_args, stderr_lines
from restlm import cli
from restlm import run_layout as layout
from restlm.data.prompts import read_prompt_table
from restlm.errors import DataError
from tiny_models import save_tiny

REWARD_MODULE = '''
def length_match(examples, outputs):
    """1 when the output has the number of words the row's `words` column asks for, less 0.25 per word off."""
    return [max(0.0, 1 - 0.25 * abs(len(o.split()) - int(e.meta["words"]))) for e, o in zip(examples, outputs)]


def mentions_cat(examples, outputs):
    return [float("cat" in o) for o in outputs]
'''
PROMPTS = [("the cat", 2), ("a dog", 3), ("the bird", 1), ("a fish", 2), ("the mat", 3), ("a tree", 1)]


@pytest.fixture(scope="module")
def user_task(tmp_path_factory):
    """A user's folder: prompts with an extra column, their reward module; a tiny model."""
    folder = tmp_path_factory.mktemp("user_task")
    for split, rows in (("train", PROMPTS), ("dev", PROMPTS[:3]), ("test", PROMPTS[3:])):
        (folder / f"{split}.jsonl").write_text("".join(json.dumps({"question": f"write about {t}", "words": w}) + "\n"
                                                       for t, w in rows))
    (folder / "user_rewards_prompts.py").write_text(REWARD_MODULE)
    save_tiny(folder / "model")
    return folder


def overrides(folder: Path, out: Path, **extra) -> list[str]:
    values = {
        "task": "prompts", "model.name": str(folder / "model"), "model.max_length": 32,
        "prompts.train": str(folder / "train.jsonl"), "prompts.dev": str(folder / "dev.jsonl"),
        "prompts.test": str(folder / "test.jsonl"), "prompts.prompt_column": "question",
        "prompts.extra_columns": "[words]", "prompts.max_new_tokens": 5, "prompts.gold": "user_rewards_prompts:mentions_cat",
        "rest.reward": "user_rewards_prompts:length_match", "rest.original_data": "none",
        "rest.grow_steps": 1, "rest.improve_steps": 2, "rest.grow_sizes": "[4]", "rest.samples_per_input": 2,
        "rest.sampling": "sample", "rest.guard_samples": 2, "train.batch_size": 4, "train.eval_batch_size": 4,
        "baselines.zero_shot.backend": "none", "run.histograms": "false", "run.tensorboard": "false",
        "run.output_dir": str(out), **extra}
    return set_args([f"{k}={v}" for k, v in values.items()])


def test_a_users_prompts_and_reward_function_run_end_to_end(user_task, tmp_path, monkeypatch, capfd):
    monkeypatch.chdir(user_task)  # the user's module sits in the working folder, as in the README
    monkeypatch.setattr(sys, "path", list(sys.path))
    out = tmp_path / "run"
    assert cli.main(["run", *overrides(user_task, out)]) == 0, capfd.readouterr().err
    results = json.loads((out / "results.json").read_text())
    assert results["task"] == "prompts" and results["primary_metric"] == "dev_reward"
    assert results["guard"] == {"reward": "test_reward", "heldout": "test_gold"}
    assert [(c["G"], c["I"]) for c in results["cells"]] == [(0, 0), (1, 1), (1, 2)]
    for cell in results["cells"]:
        assert 0 <= cell["dev_reward"] <= 1 and 0 <= cell["test_reward"] <= 1 and round(3 * cell["test_gold"], 6) in (0, 1, 2, 3)
    # no references: G0I0 is the pretrained model, not a fine-tuned one
    state = json.loads((out / "state.json").read_text())
    assert state["stages"][layout.seed_stage(0, "sft")]["sft"] == "none (no references)"
    # the grown rows are the policy's samples only (original_data none), each scored by the user's function
    grown = [json.loads(line) for line in next((out / "grown").glob("*.jsonl")).read_text().splitlines()]
    assert grown and {row["source"] for row in grown} == {"grown"}
    assert all(0 <= row["reward"] <= 1 for row in grown)
    assert (out / "report.html").exists() and json.loads((out / "inputs.json").read_text())["test"]["rows"] == 3


@pytest.mark.parametrize("extra, line", [
    ({"rest.original_data": "filtered"}, "config key 'rest.original_data': the prompts have no references"),
    ({"rest.reward": "chrf"}, "config key 'rest.reward': 'chrf' scores outputs against references"),
    ({"prompts.prompt_column": "prompt"}, "train.jsonl:1: missing column 'prompt'"),
    ({"prompts.dev": "null"}, "config key 'prompts.train': task 'prompts' needs prompts.train and prompts.dev"),
    ({"prompts.prompt": "no placeholder"}, "config key 'prompts.prompt': must contain {text}"),
    ({"rest.reward": "user_rewards_prompts:missing"}, "config key 'rest.reward': cannot import reward function"),
])
def test_bad_task_configs_are_one_line_and_write_nothing(extra, line, user_task, tmp_path, monkeypatch, capfd):
    monkeypatch.chdir(user_task)
    monkeypatch.setattr(sys, "path", list(sys.path))
    out = tmp_path / "run"
    assert cli.main(["run", *overrides(user_task, out, **extra)]) == 2
    lines = stderr_lines(capfd.readouterr().err)
    assert len(lines) == 1 and line in lines[0], lines
    assert not out.exists()


@pytest.mark.parametrize("suffix, text", [
    (".csv", "question,answer,words\nwrite about cats,cats purr,2\n\"a, quoted\",\"yes, quoted\",1\n"),
    (".tsv", "question\tanswer\twords\nwrite about cats\tcats purr\t2\na, quoted\tyes, quoted\t1\n"),
    (".jsonl", '{"question": "write about cats", "answer": "cats purr", "words": "2"}\n'
               '{"question": "a, quoted", "answer": "yes, quoted", "words": "1"}\n'),
])
def test_prompt_tables_read_every_format_with_references_and_extras(suffix, text, tmp_path):
    path = tmp_path / f"prompts{suffix}"
    path.write_text(text)
    rows = read_prompt_table(path, "question", "answer", ["words"])
    assert [(e.text, e.target, e.meta["words"], e.meta["line"]) for e in rows] == [
        ("write about cats", "cats purr", "2", 2 if suffix != ".jsonl" else 1),
        ("a, quoted", "yes, quoted", "1", 3 if suffix != ".jsonl" else 2)]


@pytest.mark.parametrize("text, message", [
    ('{"question": ""}\n', "prompts.jsonl:1: empty text in column 'question'"),
    ('{"question": 3}\n', "prompts.jsonl:1: column 'question' holds int, not text"),
    ('\n', "prompts.jsonl: no prompts"),
    ('{"prompt": "x"}\n', "prompts.jsonl:1: missing column 'question'"),
])
def test_bad_prompt_tables_name_file_and_line(text, message, tmp_path):
    path = tmp_path / "prompts.jsonl"
    path.write_text(text)
    with pytest.raises(DataError) as error:
        read_prompt_table(path, "question")
    assert str(error.value).endswith(message)


def test_the_readme_example_config_and_its_rewards(monkeypatch):
    """examples/own_task: the config loads and validates; its two reward functions on hand cases."""
    from restlm.config import load_config
    from restlm.data.examples import Example
    from restlm.rewards import build_reward

    root = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(root)
    monkeypatch.setattr(sys, "path", [*sys.path, str(root / "examples" / "own_task")])
    config = load_config("examples/own_task/config.yaml", [])
    assert (config.task, config.prompts.extra_columns, config.rest.original_data) == ("prompts", ["keyword"], "none")
    assert [len(read_prompt_table(getattr(config.prompts, s))) for s in ("train", "dev", "test")] == [24, 12, 12]
    example = Example(text="Write one short sentence about rain that uses the word 'misty'.", meta={"keyword": "misty"})
    outputs = ["The misty rain fell.", "Rain.", "The rain was misty. It fell all day.", "Mistyness " + "w " * 24]
    proxy = build_reward(config.rest.reward)(None, [example] * 4, outputs)
    gold = build_reward(config.prompts.gold)(None, [example] * 4, outputs)
    assert proxy.tolist() == pytest.approx([1.0, 0.0, 1.0, 0.9])
    assert gold.tolist() == [1.0, 0.0, 0.0, 0.0]
