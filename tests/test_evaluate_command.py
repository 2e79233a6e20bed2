"""`restlm evaluate`: a finished run's best checkpoints scored again on the run's own dev set (equal
to what the run recorded), on a file of the user's (a flipped-label copy scores 1 - accuracy), and
the refusals, each one line with exit 2."""
from __future__ import annotations

import json

import pytest

from helpers import set_args, stderr_lines, tiny_overrides, write_tsv
from restlm import cli


@pytest.fixture(scope="module")
def finished_run(tiny_model_dir, tiny_data, tmp_path_factory):
    path = tmp_path_factory.mktemp("evaluate") / "run"
    overrides = tiny_overrides(tiny_model_dir, tiny_data["train"], tiny_data["dev"], path, rest__grow_steps=1,
                               rest__improve_steps=1, rest__grow_sizes="[8]")
    assert cli.main(["run", *set_args(overrides)]) == 0
    return path


def scores_of(capfd, argv) -> dict:
    capfd.readouterr()
    assert cli.main(argv) == 0
    return json.loads(capfd.readouterr().out)


def test_a_run_is_scored_as_it_recorded_its_best_step(finished_run, capfd):
    best = json.loads((finished_run / "results.json").read_text())["best_checkpoints"]
    scores = scores_of(capfd, ["evaluate", str(finished_run)])
    assert scores["task"] == "classification" and len(scores["scores"]) == len(best) == 1
    assert scores["scores"][0]["policy"] == best[0]["checkpoint"]
    assert scores["scores"][0]["dev_accuracy"] == pytest.approx(best[0]["dev_accuracy"])


def test_a_users_own_file_is_scored_with_the_tasks_metrics(finished_run, tiny_data, tmp_path, capfd):
    flipped = write_tsv(tmp_path / "flipped.tsv", [(a, b, 1 - label) for a, b, label in tiny_data["dev_rows"]])
    own = scores_of(capfd, ["evaluate", str(finished_run)])["scores"][0]
    mine = scores_of(capfd, ["evaluate", str(finished_run), "--split", str(flipped), "--out", str(tmp_path / "s.json")])
    assert mine["split"] == str(flipped)
    assert mine["scores"][0]["accuracy"] == pytest.approx(1 - own["dev_accuracy"])
    assert json.loads((tmp_path / "s.json").read_text()) == mine


@pytest.mark.parametrize("case", ["unfinished run", "model without --task", "existing --out", "bad split file"])
def test_refusals_are_one_line(case, finished_run, tmp_path, tiny_model_dir, capfd):
    (tmp_path / "taken.json").write_text("{}")
    (tmp_path / "bad.tsv").write_text("sentence1\tsentence2\tlabel\nthe cat\ta dog\n")
    (tmp_path / "unfinished").mkdir()
    (tmp_path / "unfinished" / "state.json").write_text('{"stages": {}}')
    argv, expected = {
        "unfinished run": (["evaluate", str(tmp_path / "unfinished")], "the run has not finished (no results.json)"),
        "model without --task": (["evaluate", str(tiny_model_dir)], "--task: "),
        "existing --out": (["evaluate", str(finished_run), "--out", str(tmp_path / "taken.json")], "already exists"),
        "bad split file": (["evaluate", str(finished_run), "--split", str(tmp_path / "bad.tsv")],
                           "bad.tsv:2: 2 fields where the header has 3"),
    }[case]
    capfd.readouterr()
    assert cli.main(argv) == 2
    lines = stderr_lines(capfd.readouterr().err)
    assert len(lines) == 1 and expected in lines[0], lines
