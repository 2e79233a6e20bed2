"""Rating files as people and spreadsheets hand them back: sorted, edited, cut, re-encoded, with
formula-looking cells and bad values. A good file gives each sample its own rating whatever the row
order; a bad one is a one-line DataError naming the file (and the line where there is one)."""
from __future__ import annotations

import csv
import json
import random

import numpy as np
import pytest

from restlm.data.examples import Example
from restlm.errors import DataError
from restlm.human_feedback import human_feedback_reward, read_ratings, read_rewards, write_rating_file

# three outputs of input a, one each of b and c; several cells start like a spreadsheet formula
EXAMPLES = [Example("Das Haus ist rot.", uid="a")] * 3 + [Example("=1+1", uid="b"), Example("Guten Morgen", uid="c")]
OUTPUTS = ["The house is red.", "-the house, red", "@SUM(A1:A9)", "+49 30 1234", "Good morning"]
RATES = ["5", "1", "3", "2", "4"]  # written order
RANKS = ["2", "3", "1", "1", "1"]  # rewards (3 - rank) / 2 within input a, 1 for a lone output
RANK_REWARDS = [0.5, 0.0, 1.0, 1.0, 1.0]


# ---------------------------------------------------------------- a spreadsheet, by hand
def table(path, encoding="utf-8-sig") -> tuple[list[str], list[list[str]]]:
    with open(path, newline="", encoding=encoding) as handle:
        header, *rows = list(csv.reader(handle))
    return header, rows


def save(path, header, rows, encoding="utf-8", bom=False) -> None:
    with open(path, "w", newline="", encoding=encoding) as handle:
        if bom:
            handle.write("\ufeff")
        writer = csv.writer(handle)  # minimal quoting and CRLF, as Excel saves
        writer.writerow(header)
        writer.writerows(rows)


def filled(tmp_path, ratings, suffix=".csv"):
    path = write_rating_file(tmp_path / f"to_rate{suffix}", EXAMPLES, OUTPUTS)
    if suffix == ".jsonl":
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        path.write_text("".join(json.dumps({**row, "rating": float(r)}) + "\n" for row, r in zip(rows, ratings)))
        return path
    header, rows = table(path)
    for row, rating in zip(rows, ratings):
        row[header.index("rating")] = rating
    save(path, header, rows)
    return path


def edit_rows(change, **save_options):
    """An edit of the filled file: `change(header, rows)` in place, then saved again."""
    def edit(path):
        header, rows = table(path)
        change(header, rows)
        save(path, header, rows, **save_options)
    return edit


def set_cell(k, column, value):
    return edit_rows(lambda header, rows: rows[k].__setitem__(header.index(column), value))


def sort_by(column, reverse=False):
    return edit_rows(lambda header, rows: rows.sort(key=lambda r: r[header.index(column)], reverse=reverse))


def drop_column(column):
    def change(header, rows):
        i = header.index(column)
        for row in [header, *rows]:
            del row[i]
    return edit_rows(change)


def set_ranks(ranks):
    def change(header, rows):
        for row, rank in zip(rows, ranks):
            row[header.index("rating")] = rank
    return edit_rows(change)


def as_bytes(change):
    return lambda path: path.write_bytes(change(path.read_bytes()))


def jsonl_lines(change):
    def edit(path):
        lines = path.read_text().splitlines()
        change(lines)
        path.write_text("\n".join(lines) + "\n")
    return edit


def nothing(path):
    pass


# ---------------------------------------------------------------- the table
OK = "ok"
CASES = [
    # (id, suffix, mode, edit, expected: rewards in written order, or (message part, line or None))
    ("as_written", ".csv", "rate", nothing, [5, 1, 3, 2, 4]),
    ("sorted_by_output", ".csv", "rate", sort_by("output"), [5, 1, 3, 2, 4]),
    ("sorted_by_rating_desc", ".csv", "rate", sort_by("rating", reverse=True), [5, 1, 3, 2, 4]),
    ("sorted_by_uid_desc_ranks", ".csv", "rank", sort_by("uid", reverse=True), RANK_REWARDS),
    ("sorted_by_output_ranks", ".csv", "rank", sort_by("output"), RANK_REWARDS),
    ("rows_reversed_with_empty_rows", ".csv", "rate",
     edit_rows(lambda h, rows: (rows.reverse(), rows.append([""] * len(h)), rows.insert(2, [""] * len(h)))),
     [5, 1, 3, 2, 4]),
    ("bom_accepted", ".csv", "rate", edit_rows(lambda h, rows: None, bom=True), [5, 1, 3, 2, 4]),
    ("bom_and_sorted", ".csv", "rate", edit_rows(lambda h, rows: rows.reverse(), bom=True), [5, 1, 3, 2, 4]),
    ("lf_line_ends", ".csv", "rate", as_bytes(lambda data: data.replace(b"\r\n", b"\n")), [5, 1, 3, 2, 4]),
    ("rating_with_spaces", ".csv", "rate", set_cell(1, "rating", " 1.5 "), [5, 1.5, 3, 2, 4]),
    ("ties_share_a_rank", ".csv", "rank", set_ranks(["1", "1", "3", "1", "1"]), [1, 1, 0, 1, 1]),
    ("jsonl_sorted", ".jsonl", "rate", jsonl_lines(lambda lines: lines.sort(key=lambda s: json.loads(s)["output"])),
     [5, 1, 3, 2, 4]),
    ("jsonl_bom", ".jsonl", "rate", as_bytes(lambda data: b"\xef\xbb\xbf" + data), [5, 1, 3, 2, 4]),
    # edited text
    ("edited_output", ".csv", "rate", set_cell(1, "output", "-the house, blue"), ("not the text written", 3)),
    ("edited_output_after_sort", ".csv", "rate",
     edit_rows(lambda h, rows: (rows.reverse(), rows[0].__setitem__(h.index("output"), "Good night"))),
     ("not the text written", 2)),
    ("edited_prompt", ".csv", "rate", set_cell(0, "prompt", "Das Haus ist blau."), ("not the text written", 2)),
    ("edited_uid", ".csv", "rate", set_cell(4, "uid", "z"), ("not the text written", 6)),
    ("quote_prefix_removed", ".csv", "rate", set_cell(2, "output", "@SUM(A1:A9) "), ("not the text written", 4)),
    ("jsonl_edited_output", ".jsonl", "rate",
     jsonl_lines(lambda lines: lines.__setitem__(3, json.dumps({**json.loads(lines[3]), "output": "+1"}))),
     ("not the text written", 4)),
    # ids
    ("missing_id_column", ".csv", "rate", drop_column("id"), ("no 'id' column", 1)),
    ("missing_rating_column", ".csv", "rate", drop_column("rating"), ("no 'rating' column", 1)),
    ("id_column_twice", ".csv", "rate", edit_rows(lambda h, rows: (h.append("id"), [r.append("x") for r in rows])),
     ("column 'id' appears twice", 1)),
    ("empty_id", ".csv", "rate", set_cell(3, "id", ""), ("'id' cell is empty", 5)),
    ("duplicate_id", ".csv", "rate", edit_rows(lambda h, rows: rows.append(list(rows[1]))),
     ("appears twice (also line 3)", 7)),
    ("unknown_id_garbage", ".csv", "rate", set_cell(2, "id", "7"), ("'7' is not one this file was written with", 4)),
    ("unknown_id_out_of_range", ".csv", "rate", set_cell(2, "id", "r9/5:0123456789"), ("is not one this file", 4)),
    ("unknown_id_other_digest", ".csv", "rate", set_cell(2, "id", "r3/5:0123456789"), ("not the text written", 4)),
    ("id_of_another_file", ".csv", "rate", set_cell(2, "id", "r3/6:0123456789"), ("not from this file", 4)),
    ("jsonl_id_not_text", ".jsonl", "rate",
     jsonl_lines(lambda lines: lines.__setitem__(1, json.dumps({**json.loads(lines[1]), "id": 2}))),
     ("'id' must be text", 2)),
    ("jsonl_no_id_field", ".jsonl", "rate",
     jsonl_lines(lambda lines: lines.__setitem__(0, json.dumps({k: v for k, v in json.loads(lines[0]).items()
                                                                 if k != "id"}))),
     ("no 'id' field", 1)),
    # rows
    ("missing_middle_row", ".csv", "rate", edit_rows(lambda h, rows: rows.pop(2)), ("1 of its 5 rows missing (ids r3/5)", None)),
    ("missing_last_row", ".csv", "rate", edit_rows(lambda h, rows: rows.pop()), ("1 of its 5 rows missing (ids r5/5)", None)),
    ("sorted_and_two_missing", ".csv", "rate", edit_rows(lambda h, rows: (rows.reverse(), rows.pop(), rows.pop(0))),
     ("2 of its 5 rows missing (ids r1/5, r5/5)", None)),
    ("header_only", ".csv", "rate", edit_rows(lambda h, rows: rows.clear()), []),
    ("empty_file", ".csv", "rate", as_bytes(lambda data: b""), ("empty file: no header row", None)),
    ("short_row", ".csv", "rate", edit_rows(lambda h, rows: rows[1].pop()), ("4 cells but the header has 5", 3)),
    ("semicolon_separated", ".csv", "rate", as_bytes(lambda data: data.replace(b'","', b'";"').replace(b",", b";")),
     ("no 'id' column", 1)),
    # encodings
    ("cp1252_bytes", ".csv", "rate", edit_rows(lambda h, rows: rows[4].__setitem__(h.index("output"), "Bonjour é"),
                                              encoding="cp1252"), ("not UTF-8 text (byte 0xe9)", 6)),
    ("latin1_after_bom", ".csv", "rate", as_bytes(lambda data: b"\xef\xbb\xbf" + data.replace(b"Guten", b"G\xfcten")),
     ("not UTF-8 text (byte 0xfc)", 6)),
    ("jsonl_non_utf8", ".jsonl", "rate", as_bytes(lambda data: data.replace(b"Good", b"G\xf6od")),
     ("not UTF-8 text (byte 0xf6)", 5)),
    # bad values
    ("rating_not_a_number", ".csv", "rate", set_cell(1, "rating", "good"), ("rating 'good' is not a number", 3)),
    ("rating_decimal_comma", ".csv", "rate", set_cell(1, "rating", "4,5"), ("rating '4,5' is not a number", 3)),
    ("rating_empty", ".csv", "rate", set_cell(3, "rating", ""), ("rating is empty", 5)),
    ("rating_blank_after_sort", ".csv", "rate",
     edit_rows(lambda h, rows: (rows.reverse(), rows[1].__setitem__(h.index("rating"), "  "))), ("rating is empty", 3)),
    ("rating_nan", ".csv", "rate", set_cell(0, "rating", "nan"), ("rating 'nan' is not a finite number", 2)),
    ("rating_inf", ".csv", "rate", set_cell(0, "rating", "-inf"), ("rating '-inf' is not a finite number", 2)),
    ("rank_zero", ".csv", "rank", set_cell(0, "rating", "0"), ("rank 0 is not a whole number in 1..3", 2)),
    ("rank_too_big", ".csv", "rank", set_cell(3, "rating", "2"), ("rank 2 is not a whole number in 1..1", 5)),
    ("rank_not_whole", ".csv", "rank", set_cell(2, "rating", "1.5"), ("rank 1.5 is not a whole number", 4)),
    ("rank_blank", ".csv", "rank", set_cell(2, "rating", ""), ("rating is empty", 4)),
    ("ranks_dense_ties", ".csv", "rank", set_ranks(["1", "1", "2", "1", "1"]),
     ("rank 2 does not fit the ranks 1, 1, 2 of its input's 3 outputs", 4)),
    ("ranks_without_a_first", ".csv", "rank", set_ranks(["2", "3", "3", "1", "1"]),
     ("rank 2 does not fit the ranks 2, 3, 3", 2)),
    ("ranks_repeated_sorted", ".csv", "rank",
     edit_rows(lambda h, rows: ([r.__setitem__(h.index("rating"), "2") for r in rows[:3]], rows.reverse())),
     ("rank 2 does not fit the ranks 2, 2, 2", 4)),
]


@pytest.mark.parametrize("suffix, mode, edit, expected", [pytest.param(*case[1:], id=case[0]) for case in CASES])
def test_a_returned_rating_file(tmp_path, suffix, mode, edit, expected):
    path = filled(tmp_path, RANKS if mode == "rank" else RATES, suffix)
    edit(path)
    if isinstance(expected, list):
        np.testing.assert_allclose(read_rewards(path, mode), expected)
        return
    part, line = expected
    with pytest.raises(DataError) as info:
        read_rewards(path, mode)
    message = str(info.value)
    assert "\n" not in message and "\r" not in message
    where = f"{path}:{line}: " if line is not None else f"{path}: "
    assert message.startswith(where) and part in message, message
    assert info.value.path == str(path) and info.value.line == line


# ---------------------------------------------------------------- formula cells
FORMULAS = ["=1+1", '=HYPERLINK("http://x.example","click")', "+49 30", "-2", "@SUM(A1)", "\tindented", "\rreturn",
            "'=already quoted", "''-two quotes", "'", "'plain quote", "a=b", "plain", "", "=", "-"]
NEUTRALISED = {"=", "+", "-", "@", "\t", "\r"}


@pytest.mark.parametrize("text", FORMULAS, ids=[repr(t) for t in FORMULAS])
def test_formula_cells_are_quoted_on_write_and_read_back_exactly(tmp_path, text):
    examples = [Example(text, uid=text), Example("x" + text, text_pair=text, uid="p")]
    outputs = [text, "y"]
    path = write_rating_file(tmp_path / "r.csv", examples, outputs)
    header, rows = table(path)
    dangerous = text.lstrip("'")[:1] in NEUTRALISED
    for column in ("uid", "prompt", "output"):
        assert rows[0][header.index(column)] == ("'" + text if dangerous else text)
    assert rows[1][header.index("prompt_pair")] == ("'" + text if dangerous else text)
    assert all(cell == "" or cell[0] not in NEUTRALISED for row in rows for cell in row)
    for row, rating in zip(rows, ["2", "7"]):
        row[header.index("rating")] = rating
    save(path, header, rows)

    samples = read_ratings(path, examples, outputs)
    assert [(s.uid, s.prompt, s.output) for s in samples[:1]] == [(text, text, text)]
    assert samples[1].prompt_pair == (text or None)
    assert human_feedback_reward(path)(None, examples[::-1], outputs[::-1]).tolist() == [7.0, 2.0]


def test_every_cell_is_quoted_so_no_spreadsheet_guesses_a_type(tmp_path):
    path = write_rating_file(tmp_path / "r.csv", EXAMPLES, OUTPUTS)
    first = path.read_text(encoding="utf-8").splitlines()[1]
    assert first.startswith('"r1/5:') and first.endswith('""')


# ---------------------------------------------------------------- sentence pairs
PAIRS = [Example("A man plays a guitar.", text_pair="Someone makes music.", uid="1"),
         Example("A man plays a guitar.", text_pair="Nobody is playing.", uid="2"),
         Example("Kids run.", text_pair="Children are running.", uid="3")]


def test_sentence_pairs_show_both_sentences_in_two_columns(tmp_path):
    path = write_rating_file(tmp_path / "pairs.csv", PAIRS, ["entailment", "contradiction", "entailment"])
    header, rows = table(path)
    assert header == ["id", "uid", "prompt", "prompt_pair", "output", "rating"]
    assert [(r[2], r[3]) for r in rows] == [(e.text, e.text_pair) for e in PAIRS]
    for row, rating in zip(rows, ["3", "1", "2"]):
        row[5] = rating
    rows.sort(key=lambda r: r[3])  # sorted by the second sentence
    save(path, header, rows)
    assert read_rewards(path, "rate").tolist() == [3.0, 1.0, 2.0]
    # two outputs of the same first sentence are different inputs when their second sentences differ
    with pytest.raises(DataError, match=r"^\S+:2: rank 2 is not a whole number in 1..1"):
        read_rewards(path, "rank")

    rows[0][3] = "Children are not running."  # the second sentence of r3, now first, edited
    save(path, header, rows)
    with pytest.raises(DataError, match=rf"^{path}:2: row 'r3/3:\w+': its prompt or output is not the text written"):
        read_rewards(path)


def test_pairs_in_jsonl_keep_the_second_sentence(tmp_path):
    path = write_rating_file(tmp_path / "pairs.jsonl", PAIRS, ["a", "b", "c"])
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["prompt_pair"] for r in rows] == [e.text_pair for e in PAIRS]
    path.write_text("".join(json.dumps({**r, "rating": i}) + "\n" for i, r in enumerate(rows[::-1])))
    assert read_rewards(path).tolist() == [2.0, 1.0, 0.0]
    assert human_feedback_reward(path)(None, PAIRS, ["a", "b", "c"]).tolist() == [2.0, 1.0, 0.0]


# ---------------------------------------------------------------- the file of another Grow step
def test_the_samples_written_can_be_checked_against_the_file(tmp_path):
    path = filled(tmp_path, RATES)
    assert read_rewards(path, "rate", EXAMPLES, OUTPUTS).tolist() == [5, 1, 3, 2, 4]
    with pytest.raises(DataError, match=rf"^{path}: written with 5 rows but there are 4 samples"):
        read_rewards(path, "rate", EXAMPLES[:4], OUTPUTS[:4])
    other = OUTPUTS[:2] + ["something else"] + OUTPUTS[3:]
    with pytest.raises(DataError, match=rf"^{path}:4: row r3/5 is not the sample written there"):
        read_rewards(path, "rate", EXAMPLES, other)


# ---------------------------------------------------------------- random damage: a value or a DataError, never a traceback
@pytest.mark.parametrize("seed", range(40))
def test_random_damage_is_a_rating_or_a_one_line_data_error(tmp_path, seed):
    rng = random.Random(seed)
    suffix = ".jsonl" if seed % 4 == 3 else ".csv"
    path = filled(tmp_path, RATES, suffix)
    data = bytearray(path.read_bytes())
    for _ in range(rng.randint(1, 4)):
        at = rng.randrange(len(data))
        action = rng.choice(["flip", "delete", "insert"])
        if action == "flip":
            data[at] = rng.randrange(256)
        elif action == "delete":
            del data[at]
        else:
            data[at:at] = rng.choice([b'"', b",", b"\r", b"\n", b"\x00", b"\xff", b";", b"'", b"=", b"\xef\xbb\xbf"])
    path.write_bytes(bytes(data))
    try:
        rewards = read_rewards(path, "rank" if seed % 2 else "rate")
    except DataError as error:
        assert "\n" not in str(error) and "\r" not in str(error) and str(error).startswith(str(path))
    else:  # damage that left the texts, ids and ratings alone (quoting, say) still reads right
        expected = RANK_REWARDS if seed % 2 else [5, 1, 3, 2, 4]
        assert len(rewards) == 5 and np.isfinite(rewards).all()
        assert rewards.tolist() == expected or seed % 2 == 0  # a flipped rating digit is still a rating
