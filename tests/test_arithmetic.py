"""The `arithmetic` task: seeded problems whose answers are right, splits that share no text, the
exact-answer checker on a table of formats, its reward specs, config refusals, and `restlm run` end to
end on a tiny random Llama."""
from __future__ import annotations

import ast
import json
import operator
import re
from pathlib import Path

import pytest
from accelerate import Accelerator

from helpers import set_args
from restlm import cli
from restlm.config import load_config
from restlm.data.examples import Example
from restlm.errors import ConfigError, RestlmError
from restlm.rewards import build_reward
from restlm.rewards.answers import final_answer, strict_answer
from restlm.tasks import build_task
from restlm.tasks.arithmetic import LEVELS, generate
from tiny_models import save_tiny

ALL_LEVELS = sorted(LEVELS)


def task_for(*overrides: str):
    task = build_task(load_config(overrides=["task=arithmetic", *overrides]), Accelerator(cpu=True))
    task.load_data()
    return task


# ---------------------------------------------------------------- the generator
def test_the_same_seed_draws_the_same_problems_and_another_seed_others():
    first = generate(0, "train", 60, ALL_LEVELS, 0.5, set())
    again = generate(0, "train", 60, ALL_LEVELS, 0.5, set())
    other = generate(1, "train", 60, ALL_LEVELS, 0.5, set())
    assert [(e.text, e.target) for e in first] == [(e.text, e.target) for e in again]
    assert len({e.text for e in first} & {e.text for e in other}) < 6  # a few short ones may coincide
    assert {e.meta["level"] for e in first} == set(ALL_LEVELS) and {e.meta["kind"] for e in first} == {"word", "expression"}


def test_splits_share_no_problem_text_even_when_the_seeds_collide():
    # level 1 expressions alone are under 900 texts: 500 draws must collide, and dedup must move them
    task = task_for("arithmetic.levels=[1]", "arithmetic.word_problems=0", "arithmetic.train_size=300",
                    "arithmetic.dev_size=100", "arithmetic.test_size=100")
    texts = {name: [e.text for e in split] for name, split in task.splits().items()}
    assert {name: len(t) for name, t in texts.items()} == {"train": 300, "dev": 100, "test": 100}
    assert all(len(set(t)) == len(t) for t in texts.values())
    assert not set(texts["train"]) & set(texts["dev"]) and not set(texts["train"]) & set(texts["test"])
    assert not set(texts["dev"]) & set(texts["test"])
    # the held-out set is drawn first, so growing train never changes it
    bigger = task_for("arithmetic.levels=[1]", "arithmetic.word_problems=0", "arithmetic.train_size=400",
                      "arithmetic.dev_size=100", "arithmetic.test_size=100")
    assert [e.text for e in bigger.test] == texts["test"]


def test_asking_for_more_problems_than_a_level_has_is_a_config_error():
    with pytest.raises(ConfigError, match="config key 'arithmetic.train_size': only"):
        task_for("arithmetic.levels=[1]", "arithmetic.word_problems=0", "arithmetic.train_size=2000")


_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul}


def _evaluate(node):
    """Python's own parse of the expression, integers and + - * only (a step may start from a negative)."""
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_evaluate(node.operand)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_evaluate(node.left), _evaluate(node.right))
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return node.value
    raise AssertionError(f"unexpected node {ast.dump(node)}")


def _story(text: str) -> int:
    """A word problem read sentence by sentence, independently of the generator's steps."""
    value = None
    for sentence in re.split(r"(?<=[.?])\s+", text):
        numbers = [int(n) for n in re.findall(r"\d+", sentence)]
        if " has " in sentence and value is None:
            value = numbers[0]
        elif "bags with" in sentence:
            value = numbers[0] * numbers[1]
        elif re.search(r"buys \d+ more|finds \d+ more|gives (her|him) \d+ more", sentence):
            value += numbers[0]
        elif re.search(r"gives \d+ to a friend|loses \d+|sells \d+", sentence):
            value -= numbers[0]
        else:
            assert sentence.startswith("How many"), sentence
    return value


def test_every_answer_is_right_by_an_independent_reading_and_each_worked_step_holds():
    problems = generate(3, "test", 400, ALL_LEVELS, 0.5, set())
    for e in problems:
        answer = e.meta["answer"]
        if e.meta["kind"] == "expression":
            assert _evaluate(ast.parse(e.text.removeprefix("What is ").removesuffix("?"), mode="eval")) == answer, e.text
        else:
            assert _story(e.text) == answer > 0, e.text
        *steps, last = e.target.splitlines()
        assert last == f"Answer: {answer}" and len(steps) == LEVELS[e.meta["level"]].operations
        for step in steps:
            left, right = step.split(" = ")
            assert _evaluate(ast.parse(left, mode="eval")) == int(right), step
        assert step.endswith(f"= {answer}")  # the last step is the answer


# ---------------------------------------------------------------- the checker
@pytest.mark.parametrize("output, strict, lenient", [
    ("Answer: 42", True, True),
    ("8 * 3 = 24\n17 + 24 = 42\nAnswer: 42", True, True),
    ("Answer: 42\n\n  ", True, True),               # trailing blank lines are not the last line
    ("42", False, True),
    ("The answer is 42.", False, True),
    ("#### 42", False, True),
    ("so it is \\boxed{42}", False, True),
    ("answer: 42", False, True),                    # strict asks for the exact 'Answer: N'
    ("Answer: 42.", False, True),
    ("Answer: 42.0", False, True),
    ("17 + 25 = 42", False, True),                  # lenient takes the line's last number
    ("Answer: 41", False, False),                   # wrong number
    ("Answer: 42\nI hope that helps!", False, False),  # the right number only in an earlier line
    ("42\nSo the total is 41.", False, False),
    ("", False, False),
    ("   \n\n", False, False),
    ("It is 40, 41 or 42... no, 43", False, False),  # several numbers: the last one is read
    ("The answer is 42, not 41.", False, True),      # a marked answer wins over the last number
    ("Answer: N", False, False),
    ("Answer: 420", False, False),
])
def test_the_checker_reads_the_usual_formats(output, strict, lenient):
    assert (strict_answer(output) == 42) is strict
    assert (final_answer(output) == 42) is lenient


@pytest.mark.parametrize("text, value", [
    ("-7", -7), ("x = -7", -7), ("10-3", 3), ("1,234", 1234), ("Answer: 1,234", 1234), ("$1,234.00", 1234),
    ("42.5", 42.5), ("12,5", 5), ("no number here", None),
])
def test_numbers_are_read_with_signs_and_thousands(text, value):
    assert final_answer(text) == value


def test_the_reward_specs_score_outputs_against_the_target_through_build_reward():
    strict, lenient = build_reward("exact_answer"), build_reward("exact_answer_lenient")
    assert (strict.name, lenient.name) == ("exact_answer", "exact_answer_lenient")
    examples = [Example("What is 6 * 7?", target="6 * 7 = 42\nAnswer: 42"), Example("x", target="-7"),
                Example("y", target="1234"), Example("z", target="Answer: 5")]
    outputs = ["Answer: 42", "The answer is -7.", "Answer: 1234", "Answer: 6"]
    assert strict(None, examples, outputs).tolist() == [1, 0, 1, 0]
    assert lenient(None, examples, outputs).tolist() == [1, 1, 1, 0]
    assert build_reward("exact_answer", normalise=True)(None, examples, outputs).tolist() == [1, 0, 1, 0]
    with pytest.raises(RestlmError, match="no numeric target"):
        strict(None, [Example("q", target="no number")], ["Answer: 1"])
    with pytest.raises(ConfigError, match="exact_answer, exact_answer_lenient"):
        build_reward("exact_answr")


# ---------------------------------------------------------------- config
@pytest.mark.parametrize("override, key", [
    ("arithmetic.levels=[1, 9]", "arithmetic.levels[1]"),
    ("arithmetic.levels=[]", "arithmetic.levels"),
    ("arithmetic.levels=hard", "arithmetic.levels"),
    ("arithmetic.train_size=0", "arithmetic.train_size"),
    ("arithmetic.test_size=0", "arithmetic.test_size"),
    ("arithmetic.word_problems=1.5", "arithmetic.word_problems"),
    ("arithmetic.prompt=no placeholder", "arithmetic.prompt"),
    ("arithmetic.level=2", "arithmetic.level"),
])
def test_bad_arithmetic_configs_are_one_line_errors_naming_the_key(override, key):
    with pytest.raises(ConfigError) as error:
        load_config(overrides=["task=arithmetic", override])
    assert error.value.key == key and "\n" not in str(error.value)


def test_the_task_scores_with_exact_answer_unless_told_otherwise():
    assert task_for("arithmetic.train_size=2").proxy_reward().name == "exact_answer"
    assert task_for("arithmetic.train_size=2", "rest.reward=exact_answer_lenient").proxy_reward().name == \
        "exact_answer_lenient"


class Oracle:
    """A stand-in policy that answers every problem with its reference (or one fixed reply)."""

    def __init__(self, reply=None):
        self.reply, self.asked = reply, []

    def sample(self, examples, greedy=False):
        self.asked.append(len(examples))
        return [[self.reply if self.reply is not None else e.target] for e in examples]


def test_evaluate_scores_the_reference_as_right_and_a_fixed_reply_as_wrong():
    task = task_for("arithmetic.train_size=2", "arithmetic.dev_size=20", "arithmetic.test_size=30")
    perfect = task.evaluate(Oracle())
    assert {k: perfect[k] for k in task.compare_keys()} == {k: 1.0 for k in task.compare_keys()}
    bare = task.evaluate(Oracle("12345"))  # no answer line, and never the right number
    assert bare["dev_exact_strict"] == bare["test_exact_lenient"] == 0.0
    # early stopping's score each epoch: evaluate()'s selection metric, from a decode of dev alone
    for reply, expected in ((None, 1.0), ("12345", 0.0)):
        oracle = Oracle(reply)
        assert task.selection_score(oracle) == expected and oracle.asked == [20]


# ---------------------------------------------------------------- end to end
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "arithmetic" / "config.yaml"
KEYS = ["dev_exact_strict", "dev_exact_lenient", "test_exact_strict", "test_exact_lenient"]


def tiny_example(model: Path, out: Path) -> list[str]:
    """The example config's overrides for a tiny Llama and a few problems."""
    values = {"model.name": model, "model.max_length": 192, "arithmetic.train_size": 8, "arithmetic.dev_size": 4,
              "arithmetic.test_size": 4, "arithmetic.max_new_tokens": 6, "train.batch_size": 4,
              "train.eval_batch_size": 8, "rest.grow_sizes": "[4]", "rest.samples_per_input": 2,
              "rest.improve_steps": 1, "rest.guard_samples": 2, "run.output_dir": out, "ppo.total_steps": 2,
              "ppo.batch_size": 2, "ppo.mini_batch_size": 2, "ppo.ppo_epochs": 1, "ppo.eval_every": 1}
    return set_args([f"{k}={v}" for k, v in values.items()])


def test_restlm_run_of_the_example_on_a_tiny_llama_records_the_exact_answer_metrics(tmp_path, capfd):
    model, out = save_tiny(tmp_path / "model"), tmp_path / "run"
    # rest.reward at its default (nll, a classifier's reward): the task makes it exact_answer
    args = ["run", "--config", str(EXAMPLE), *tiny_example(model, out), "--set", "rest.reward=nll",
            "--set", "rest.normalise_reward=true"]
    assert cli.main(args) == 0, capfd.readouterr().err
    results = json.loads((out / "results.json").read_text())
    assert results["task"] == "arithmetic" and results["primary_metric"] == "dev_exact_strict"
    assert json.loads((out / "config.json").read_text())["rest"]["reward"] == "exact_answer"
    assert [(c["G"], c["I"]) for c in results["cells"]] == [(0, 0), (1, 1)]
    for cell in results["cells"]:
        assert all(round(4 * cell[k], 6) in (0, 1, 2, 3, 4) for k in KEYS), cell  # shares of 4 problems
        assert cell["dev_exact_strict"] <= cell["dev_exact_lenient"]
    assert json.loads((out / "inputs.json").read_text())["test"]["rows"] == 4


def test_restlm_compare_takes_the_example_with_sft_rest_and_ppo(tmp_path, capfd):
    model, out = save_tiny(tmp_path / "model"), tmp_path / "compare"
    args = ["compare", "--task", str(EXAMPLE), *tiny_example(model, tmp_path / "unused"),
            "--methods", "sft,rest,ppo", "--eval-samples", "2", "--bootstrap", "50", "--out", str(out)]
    assert cli.main(args) == 0, capfd.readouterr().err[-3000:]
    summary = json.loads((out / "compare.json").read_text())
    assert summary["metrics"] == {"selection": "dev_exact_strict", "proxy": "test_exact_strict",
                                  "gold": "test_exact_lenient"}
    assert [m["method"] for m in summary["methods"]] == ["sft", "rest", "ppo"]
    assert all(0 <= m["gold"] <= 1 and 0 <= m["proxy"] <= m["gold"] for m in summary["methods"])
