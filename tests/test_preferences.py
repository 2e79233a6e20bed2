"""Preference pairs, prompt-completion rows and sentiment sentences: reading them, one-line errors
naming file and line, the seeded train/eval split, and cutting hub dialogues into prompt + responses."""
from __future__ import annotations

import json

import pytest

from restlm.data.completions import read_completions
from restlm.data.location import data_root
from restlm.data.preferences import (
    PreferencePair,
    load_hub_preferences,
    read_preferences,
    split_dialogues,
)
from restlm.data.sentiment import read_sentiment, read_sentiment_sources
from restlm.data.splits import train_eval_split
from restlm.errors import ConfigError, DataError

ROWS = [{"prompt": "\n\nHuman: hi\n\nAssistant:", "chosen": " Hello!", "rejected": " Go away.", "extra": 1},
        {"prompt": "p2", "chosen": "c2", "rejected": ""}]


def write_lines(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return path


def one_line_error(call, *args) -> str:
    with pytest.raises(DataError) as info:
        call(*args)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_read_preferences_keeps_order_text_and_empty_responses(tmp_path):
    path = write_lines(tmp_path / "prefs.jsonl", [json.dumps(r) for r in ROWS[:1]] + [""] + [json.dumps(ROWS[1])])
    pairs = read_preferences(path)
    assert pairs == [PreferencePair(ROWS[0]["prompt"], " Hello!", " Go away.", uid="prefs-1"),
                     PreferencePair("p2", "c2", "", uid="prefs-3")]
    assert read_preferences(path, limit=1) == pairs[:1]


@pytest.mark.parametrize("line, message", [
    ('{"prompt": "p", "chosen": "c"', "prefs.jsonl:2: malformed JSON"),
    ('["p", "c", "r"]', "prefs.jsonl:2: expected a JSON object, found list"),
    ('{"prompt": "p", "chosen": "c"}', "prefs.jsonl:2: missing key 'rejected'"),
    ('{"prompt": "p", "chosen": 3, "rejected": "r"}', "prefs.jsonl:2: key 'chosen' holds int, not text"),
    ('{"prompt": null, "chosen": "c", "rejected": "r"}', "prefs.jsonl:2: key 'prompt' holds NoneType, not text"),
])
def test_bad_preference_lines_name_file_and_line(tmp_path, line, message):
    path = write_lines(tmp_path / "prefs.jsonl", [json.dumps(ROWS[0]), line])
    assert message in one_line_error(read_preferences, path)


def test_empty_or_missing_preference_file(tmp_path):
    assert "no preference pairs" in one_line_error(read_preferences, write_lines(tmp_path / "e.jsonl", ["", " "]))
    assert "cannot read" in one_line_error(read_preferences, tmp_path / "missing.jsonl")


def test_the_shared_hh_file_reads_whole():
    pairs = read_preferences(data_root() / "hh_rlhf" / "helpful_base_pairs.jsonl")
    assert len(pairs) == 2000 and all(p.prompt.endswith("\n\nAssistant:") for p in pairs)


def test_split_dialogues_cuts_after_the_last_shared_assistant_turn():
    shared = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: help?\n\nAssistant:"
    assert split_dialogues(shared + " Sure.", shared + " No.") == (shared, " Sure.", " No.")
    # responses that agree on their first words do not move the cut
    assert split_dialogues(shared + " Sure, yes", shared + " Sure, no") == (shared, " Sure, yes", " Sure, no")


def test_hub_loader_offline_is_one_line(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    message = one_line_error(load_hub_preferences, "no-such-user/no-such-prefs")
    assert message.startswith("no-such-user/no-such-prefs: cannot load split 'train'")


def test_split_is_seeded_disjoint_and_complete():
    items = list(range(50))
    train, held = train_eval_split(items, eval_fraction=0.1, seed=3)
    assert len(held) == 5 and len(train) == 45 and sorted(train + held) == items
    assert train_eval_split(items, 0.1, seed=3) == (train, held)
    assert train_eval_split(items, 0.1, seed=4) != (train, held)
    assert len(train_eval_split(items, seed=0, eval_size=20)[1]) == 20
    with pytest.raises(ValueError, match="non-empty"):
        train_eval_split(items[:3], eval_fraction=0.1)


def test_sentiment_lines_split_on_newline_only(tmp_path):
    path = tmp_path / "s.txt"
    path.write_bytes("Great\u0085 film.  \t1\nAwful.\t0\n\n".encode())  # NEL inside a sentence, as in IMDB
    examples = read_sentiment(path)
    assert [(e.text, e.label, e.uid) for e in examples] == [("Great\u0085 film.", 1, "s-1"), ("Awful.", 0, "s-2")]


@pytest.mark.parametrize("line, message", [("no tab here", "expected 'sentence<TAB>label'"),
                                           ("Fine.\t2", "label '2' is not 0 or 1"), ("  \t1", "empty sentence")])
def test_bad_sentiment_lines(tmp_path, line, message):
    path = write_lines(tmp_path / "s.txt", ["Good.\t1", line])
    assert f"s.txt:2: {message}" in one_line_error(read_sentiment, path)


def test_the_shared_sentiment_files_read_whole():
    examples = read_sentiment_sources()
    assert len(examples) == 3000 and sum(e.label for e in examples) == 1500
    assert len(read_sentiment_sources(["yelp"])) == 1000
    with pytest.raises(ConfigError, match="imdb, yelp, amazon"):
        read_sentiment_sources(["twitter"])


def test_completions_and_their_errors(tmp_path):
    path = write_lines(tmp_path / "c.jsonl", [json.dumps({"prompt": "2+2=", "completion": "4"})])
    [example] = read_completions(path)
    assert (example.text, example.target, example.uid) == ("2+2=", "4", "c-1")
    bad = write_lines(tmp_path / "c.jsonl", [json.dumps({"prompt": "2+2=", "completion": "4"}), '{"prompt": "x"}'])
    assert "c.jsonl:2: missing key 'completion'" in one_line_error(read_completions, bad)
