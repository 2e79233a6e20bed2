"""Human feedback: samples written for rating (JSONL and CSV), filled in as a person would, read back
by row id as rewards aligned to the samples (ratings as they are, ranks to [0, 1] by hand; also by
ReST's own read-back, from a sorted file), looked up by a Reward in any order; one-line DataErrors
naming file and line for empty, malformed or missing ratings."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from restlm import run_layout as layout

from restlm.data.examples import Example
from restlm.errors import DataError, RestlmError
from restlm.human_feedback import (
    FIELDS,
    human_feedback_reward,
    read_rewards,
    write_rating_file,
)

# two inputs: three outputs of the first (one with a comma, quotes and a newline), one of the second
EXAMPLES = [Example("Das Haus ist rot.", uid="a")] * 3 + [Example("Guten Morgen", uid="b")]
OUTPUTS = ["The house is red.", 'The "house", red\nand tall', "House red", "Good morning"]


def fill(path, ratings) -> None:
    """Fill the `rating` column in file order, as a person would (JSONL: numbers, CSV: cells)."""
    if path.suffix == ".jsonl":
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        path.write_text("".join(json.dumps({**row, "rating": r}) + "\n" for row, r in zip(rows, ratings)))
        return
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows({**row, "rating": r} for row, r in zip(rows, ratings))


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_round_trip_of_ratings_and_ranks(tmp_path, suffix):
    path = write_rating_file(tmp_path / f"to_rate{suffix}", EXAMPLES, OUTPUTS)
    written = read_ratings_unfilled(path)
    assert written == [("a", "Das Haus ist rot.", o) for o in OUTPUTS[:3]] + [("b", "Guten Morgen", "Good morning")]

    fill(path, [4, 2.5, "1", 3])
    np.testing.assert_array_equal(read_rewards(path, "rate"), [4.0, 2.5, 1.0, 3.0])
    reward = human_feedback_reward(path, "rate")
    order = [3, 1, 0, 2]  # any order of (example, output) pairs
    np.testing.assert_array_equal(reward(None, [EXAMPLES[i] for i in order], [OUTPUTS[i] for i in order]),
                                  [3.0, 2.5, 4.0, 1.0])
    # rated scores are min-max scaled by `normalised`: (r - 1) / 3
    np.testing.assert_allclose(reward.normalised()(None, EXAMPLES, OUTPUTS), [1.0, 0.5, 0.0, 2 / 3])

    # ranks within an input: (3 - rank) / 2 for the group of three, 1 for the lone output
    fill(path, [2, 1, 3, 1])
    np.testing.assert_array_equal(read_rewards(path, "rank"), [0.5, 1.0, 0.0, 1.0])
    ranked = human_feedback_reward(path, "rank")
    np.testing.assert_array_equal(ranked.normalised()(None, EXAMPLES, OUTPUTS), [0.5, 1.0, 0.0, 1.0])


def read_ratings_unfilled(path) -> list[tuple[str, str, str]]:
    """(uid, prompt, output) per written row, checking every rating is empty."""
    if path.suffix == ".jsonl":
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        assert all(row["rating"] is None for row in rows)
    else:
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle))
        assert all(row["rating"] == "" for row in rows) and list(rows[0]) == list(FIELDS)
    return [(row["uid"], row["prompt"], row["output"]) for row in rows]


def test_ties_and_a_pair_rated_twice(tmp_path):
    path = write_rating_file(tmp_path / "r.jsonl", EXAMPLES[:3] + EXAMPLES[:1], OUTPUTS[:3] + OUTPUTS[:1])
    fill(path, [1, 1, 3, 4])  # a tie at the top; the first output appears twice in its group of four
    np.testing.assert_array_equal(read_rewards(path, "rank"), [1.0, 1.0, 1 / 3, 0.0])
    reward = human_feedback_reward(path, "rank")
    assert reward(None, EXAMPLES[:1], OUTPUTS[:1]).tolist() == [0.5]  # the mean of its two rewards


def one_line_error(function, *args) -> str:
    with pytest.raises(DataError) as info:
        function(*args)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_empty_malformed_and_missing_ratings_name_file_and_line(tmp_path):
    path = write_rating_file(tmp_path / "r.csv", EXAMPLES, OUTPUTS)
    # the second record spans lines 3-4 of the CSV (its output has a newline): the third starts at line 5
    fill(path, [1, 2, "", 3])
    assert one_line_error(read_rewards, path) == f"{path}:5: rating is empty: every output needs a rating"
    fill(path, [1, 2, "good", 3])
    assert one_line_error(read_rewards, path) == f"{path}:5: rating 'good' is not a number"
    fill(path, [1, 2, 4, 1])
    assert one_line_error(read_rewards, path, "rank") == (
        f"{path}:5: rank 4 is not a whole number in 1..3 (its input has 3 outputs)")
    fill(path, [1, 2, 3, 1])
    reward = human_feedback_reward(path, "rank")
    message = one_line_error(reward, None, [EXAMPLES[0]], ["never shown"])
    assert message.startswith(f"{path}: no rating for output 'never shown' of example 'a'")

    jsonl = write_rating_file(tmp_path / "r.jsonl", EXAMPLES, OUTPUTS)
    assert one_line_error(read_rewards, jsonl) == f"{jsonl}:1: rating is empty: every output needs a rating"
    first = json.loads(jsonl.read_text().splitlines()[0])
    jsonl.write_text(json.dumps({**first, "rating": 1}) + '\n{"uid": "a", "prompt": "x"\n')
    assert one_line_error(read_rewards, jsonl).startswith(f"{jsonl}:2: not a JSON line")
    jsonl.write_text(json.dumps({k: v for k, v in first.items() if k != "output"}) + "\n")
    assert one_line_error(read_rewards, jsonl) == (
        f"{jsonl}:1: no 'output' field (a rating file has id, uid, prompt, output, rating)")
    jsonl.write_text(json.dumps({**first, "rating": True}) + "\n")
    assert one_line_error(read_rewards, jsonl) == f"{jsonl}:1: rating True is not a number"

    assert "no such rating file" in one_line_error(read_rewards, tmp_path / "missing.csv")
    assert "is .jsonl or .csv" in one_line_error(write_rating_file, tmp_path / "r.txt", EXAMPLES, OUTPUTS)
    with pytest.raises(RestlmError, match="mode"):
        read_rewards(path, "stars")


def test_the_improve_step_gets_each_sample_its_own_rating_from_a_sorted_file(tmp_path):
    """ReST's human-feedback hook (`rewards_from_people`), on a file a person sorted before rating."""
    from restlm.errors import AwaitingRatings
    from restlm.human_feedback import rewards_from_people

    examples = [Example("Das Haus", uid="a")] + EXAMPLES
    grown = (examples, ["The house"] + OUTPUTS, ["original"] + ["grown"] * 4)
    key = layout.grow_stage(layout.STANDALONE, 1)
    path = tmp_path / layout.ratings_file(key)
    path.parent.mkdir()  # a run has grown/ by then: the Grow step wrote there
    with pytest.raises(AwaitingRatings, match="restlm run --resume"):
        rewards_from_people(path, "rate", *grown, tmp_path, is_main=True)
    with open(path, newline="") as handle:
        header, *rows = list(csv.reader(handle))
    ratings = dict(zip(OUTPUTS, ["3", "1", "2", "5"]))  # by output, whatever the row order
    for row in rows:
        row[header.index("rating")] = ratings[row[header.index("output")]]
    rows.sort(key=lambda row: row[header.index("rating")])  # written order 3, 1, 2, 5; now 1, 2, 3, 5
    with open(path, "w", newline="") as handle:
        csv.writer(handle).writerows([header, *rows])
    rated = rewards_from_people(path, "rate", *grown, tmp_path, is_main=True)
    np.testing.assert_allclose(rated, [1.0, 0.5, 0.0, 0.25, 1.0])  # (r - 1) / 4; the original keeps 1
