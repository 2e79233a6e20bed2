"""Human feedback in place of a reward model: a file of samples for people to rate, read back as rewards.

    write_rating_file("to_rate.csv", examples, outputs)          # id, uid, prompt, output, rating (empty)
    ... people fill in `rating`, sort the rows as they like ...
    rewards = read_rewards("to_rate.csv", mode="rank")          # in the order the samples were written
    reward = human_feedback_reward("to_rate.csv", mode="rank")  # a Reward for ReST or PPO

Two modes, both in the `rating` column:
  rate  a number per output, higher is better; the reward is that number.
  rank  a rank per output among the outputs of the same input (same uid and prompt), 1 the best;
        tied outputs share a rank and the next rank is skipped (1, 1, 3). The reward is
        (g - rank) / (g - 1) for a group of g outputs: 1 for the best, 0 for the worst, 1 when
        the group has one output.
A file is JSONL or CSV, by its suffix (.jsonl / .csv); sentence pairs get a `prompt_pair` column
beside `prompt`. Every rating must be filled in.

Rows are matched to samples by their `id` (r<row>/<rows>:<digest of the row's text>), never by
position, so a spreadsheet may sort or filter the rows; a file with ids missing, repeated or
unknown, rows missing, or a prompt or output edited is refused with a DataError naming file and line.
CSV cells that a spreadsheet would run as a formula (=, +, -, @, tab, CR) are written behind a
single quote (OWASP), which reading takes off again, so every text reads back as written.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from restlm.atomic_files import write_atomic
from restlm.data.examples import Example
from restlm.errors import AwaitingRatings, DataError, RestlmError
from restlm.rewards.base import Reward

FIELDS = ("id", "uid", "prompt", "output", "rating")
PAIR_FIELDS = ("id", "uid", "prompt", "prompt_pair", "output", "rating")  # sentence pairs: both sentences
TEXT_FIELDS = ("uid", "prompt", "prompt_pair", "output")
MODES = ("rate", "rank")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what Excel, LibreOffice and Sheets run as a formula
ROW_ID = re.compile(r"r(\d+)/(\d+):([0-9a-f]{10})")


@dataclass(frozen=True)
class RatedSample:
    """One filled row: its place as written (1..rows), which input, which output, its rating, and the
    file line it came from."""

    row: int
    uid: str
    prompt: str
    prompt_pair: str | None
    output: str
    rating: float
    line: int

    @property
    def group(self) -> tuple[str, str, str]:
        return self.uid, self.prompt, self.prompt_pair or ""

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (*self.group, self.output)


def write_rating_file(path: str | Path, examples: Sequence[Example], outputs: Sequence[str]) -> Path:
    """One row per (example, output) pair, in order, with its id and an empty rating; .jsonl or .csv
    by suffix. The prompt written is the example's text (what a person reads), not the policy's
    template; sentence pairs get their second sentence in `prompt_pair`.
    """
    path = Path(path)
    if len(examples) != len(outputs):
        raise RestlmError(f"{len(examples)} examples but {len(outputs)} outputs")
    pairs = any(e.text_pair is not None for e in examples)
    rows = []
    for row, (example, output) in enumerate(zip(examples, outputs), start=1):
        text = _sample_key(example, output)
        cells = {"id": _row_id(row, len(examples), text), "uid": text[0], "prompt": text[1]}
        if pairs:
            cells["prompt_pair"] = text[2]
        rows.append({**cells, "output": text[3], "rating": None})
    if _format(path) == "jsonl":
        write_atomic(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    else:
        write_atomic(path, _csv_text(rows, PAIR_FIELDS if pairs else FIELDS))
    return path


def read_ratings(path: str | Path, examples: Sequence[Example] | None = None,
                 outputs: Sequence[str] | None = None) -> list[RatedSample]:
    """Every row of a filled file, in the order written (whatever order the file is in now).

    DataError naming file and line for: a missing column, an id missing, repeated or not of this
    file, a prompt or output not as written, a rating empty or not a finite number; naming the
    file for rows missing. With `examples` and `outputs` (the samples written), each row must also
    be the sample written at its place.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "no such rating file")
    text = _decoded(path)
    rows = _jsonl_rows(path, text) if _format(path) == "jsonl" else _csv_rows(path, text)
    samples, lines, rows_written = {}, {}, None
    for line, row in rows:
        row_number, count, cell = _row_place(path, line, row)
        rows_written = rows_written or count
        if count != rows_written:
            raise DataError(path, f"id {cell!r} is not from this file (its other ids say {rows_written} rows)", line)
        if row_number in lines:
            raise DataError(path, f"id {cell!r} appears twice (also line {lines[row_number]})", line)
        _check_text(path, line, row, cell)
        lines[row_number] = line
        pair = row.get("prompt_pair")
        samples[row_number] = RatedSample(row_number, row["uid"], row["prompt"], pair if pair else None,
                                          row["output"], _rating(path, line, row["rating"]), line)
    if examples is not None:
        _check_written(path, samples, rows_written, examples, outputs)
    missing = [r for r in range(1, (rows_written or 0) + 1) if r not in samples]
    if missing:
        shown = ", ".join(f"r{r}/{rows_written}" for r in missing[:3]) + (", ..." if len(missing) > 3 else "")
        raise DataError(path, f"{len(missing)} of its {rows_written} rows missing (ids {shown}): "
                              "every written row needs a rating")
    return [samples[r] for r in sorted(samples)]


def ratings_to_rewards(samples: Sequence[RatedSample], mode: str = "rate", path: str | Path = "ratings") -> np.ndarray:
    """One reward per sample, in order: the rating itself ('rate'), or 1 for rank 1 down to 0 for
    the last rank of its group ('rank'). A rank outside 1..g, not whole, or not a ranking of its
    group (each of 1..g once, ties sharing a rank and skipping the next) raises DataError."""
    if mode not in MODES:
        raise RestlmError(f"human feedback mode must be one of {MODES}, not {mode!r}")
    if mode == "rate":
        return np.array([s.rating for s in samples], dtype=np.float64)
    groups = defaultdict(list)
    for sample in samples:
        groups[sample.group].append(sample.rating)
    for sample in sorted(samples, key=lambda s: s.line):  # the first bad line of the file, for a person
        ranks = groups[sample.group]
        size = len(ranks)
        if sample.rating != int(sample.rating) or not 1 <= sample.rating <= size:
            raise DataError(path, f"rank {sample.rating:g} is not a whole number in 1..{size} "
                                  f"(its input has {size} outputs)", sample.line)
        if sample.rating != 1 + sum(r < sample.rating for r in ranks):
            shown = ", ".join(f"{r:g}" for r in sorted(ranks))
            raise DataError(path, f"rank {sample.rating:g} does not fit the ranks {shown} of its input's {size} "
                                  f"outputs: each of 1..{size} once, tied outputs sharing a rank and skipping "
                                  "the next (1, 1, 3)", sample.line)
    sizes = [len(groups[s.group]) for s in samples]
    return np.array([(g - s.rating) / (g - 1) if g > 1 else 1.0 for s, g in zip(samples, sizes)], dtype=np.float64)


def read_rewards(path: str | Path, mode: str = "rate", examples: Sequence[Example] | None = None,
                 outputs: Sequence[str] | None = None) -> np.ndarray:
    """The rewards of a filled file, in the order `write_rating_file` wrote its samples (the file's
    rows may be in any order). Pass the samples written to check the file is theirs."""
    return ratings_to_rewards(read_ratings(path, examples, outputs), mode, path)


def human_feedback_reward(path: str | Path, mode: str = "rate") -> Reward:
    """A Reward that looks up each (example, output) pair in a filled rating file.

    A pair is found by example uid, example text (and text_pair) and output; a pair rated more than
    once gets the mean of its rewards. A pair not in the file raises DataError naming the file. Rank
    rewards are already in [0, 1]; rated ones are min-max scaled by `normalised()`.
    """
    samples = read_ratings(path)
    rewards = ratings_to_rewards(samples, mode, path)
    found = defaultdict(list)
    for sample, reward in zip(samples, rewards):
        found[sample.key].append(reward)
    table = {key: float(np.mean(values)) for key, values in found.items()}

    def score(policy, examples, outputs):
        keys = [_sample_key(e, o) for e, o in zip(examples, outputs, strict=True)]
        missing = [(e, o) for e, o, key in zip(examples, outputs, keys) if key not in table]
        if missing:
            example, output = missing[0]
            raise DataError(path, f"no rating for output {str(output)[:60]!r} of example "
                                  f"{example.uid or example.text[:40]!r} ({len(missing)} pairs unrated)")
        return [table[key] for key in keys]

    return Reward(f"human:{mode}:{Path(path).name}", score, True, (lambda s: s) if mode == "rank" else None)


RATING_HELP = {"rate": "a number per output, higher is better",
               "rank": "1 for the best output of an input, 2 for the next, ..."}


def rewards_from_people(path: Path, mode: str, examples: Sequence[Example], outputs: Sequence,
                        sources: Sequence[str], run_path: Path, is_main: bool) -> np.ndarray:
    """ReST's human-feedback hook: the rewards of a Grow step's rows, people's ratings for its
    samples (scaled to [0, 1] in `rate` mode) and 1, the top, for the original rows.

    The first time, write the rating file `path` and stop the run (AwaitingRatings); once it is
    filled in, `restlm run --resume` comes back here and reads it.
    """
    sampled = [j for j, source in enumerate(sources) if source == "grown"]
    if not path.exists():
        if is_main:
            write_rating_file(path, [examples[j] for j in sampled], [outputs[j] for j in sampled])
        raise AwaitingRatings(f"wrote {path}: fill in its 'rating' column ({mode}: {RATING_HELP[mode]}), then run "
                              f"`restlm run --resume {run_path}`")
    human = read_rewards(path, mode)
    if len(human) != len(sampled):
        raise DataError(path, f"{len(human)} rated rows but the Grow step has {len(sampled)} samples")
    if mode == "rate":  # ratings on any scale -> [0, 1], like the other rewards
        low, high = human.min(), human.max()
        human = (human - low) / (high - low) if high > low else np.ones_like(human)
    rewards = np.ones(len(sources))
    rewards[sampled] = human
    return rewards


# ---------------------------------------------------------------- ids: a row's place and what was written there
def _sample_key(example: Example, output) -> tuple[str, str, str, str]:
    return example.uid, example.text, example.text_pair or "", str(output)


def _row_id(row: int, rows: int, text: tuple[str, str, str, str]) -> str:
    """r<row>/<rows>:<digest>: the digest of the row's text catches an edited prompt or output, and
    the leading letter keeps spreadsheets from reading it as a date or a number."""
    digest = hashlib.sha256(json.dumps(text, ensure_ascii=False).encode("utf-8")).hexdigest()[:10]
    return f"r{row}/{rows}:{digest}"


def _row_place(path: Path, line: int, row: dict) -> tuple[int, int, str]:
    """(row, rows, id) from a row's id cell, else DataError."""
    for name in ("id", *TEXT_FIELDS):
        if name in row and row[name] is not None and not isinstance(row[name], str):
            raise DataError(path, f"'{name}' must be text, not {json.dumps(row[name])[:40]}", line)
    cell = (row.get("id") or "").strip()
    if not cell:
        raise DataError(path, "the 'id' cell is empty: keep each row's id as written", line)
    match = ROW_ID.fullmatch(cell)
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise DataError(path, f"id {cell!r} is not one this file was written with (ids look like r1/10:<digest>)", line)
    return int(match[1]), int(match[2]), cell


def _check_text(path: Path, line: int, row: dict, cell: str) -> None:
    """DataError unless the row's text is the text its id was written with."""
    row_number, rows = (int(part) for part in ROW_ID.fullmatch(cell).groups()[:2])
    text = (row["uid"], row["prompt"], row.get("prompt_pair") or "", row["output"])
    if _row_id(row_number, rows, text) != cell:
        raise DataError(path, f"row {cell!r}: its prompt or output is not the text written (edited?); "
                              "only the 'rating' column is for filling in", line)


def _check_written(path: Path, samples: dict[int, RatedSample], rows: int | None,
                   examples: Sequence[Example], outputs: Sequence[str]) -> None:
    if len(examples) != (rows or 0):
        raise DataError(path, f"written with {rows or 0} rows but there are {len(examples)} samples to rate "
                              "(a rating file of another Grow step?)")
    for row, (example, output) in enumerate(zip(examples, outputs, strict=True), start=1):
        if row in samples and samples[row].key != _sample_key(example, output):
            raise DataError(path, f"row r{row}/{rows} is not the sample written there "
                                  "(a rating file of another Grow step?)", samples[row].line)


# ---------------------------------------------------------------- plumbing
def _format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in (".jsonl", ".csv"):
        raise DataError(path, "a rating file is .jsonl or .csv")
    return suffix[1:]


def _decoded(path: Path) -> str:
    """The file as text: UTF-8, with or without the BOM that Excel writes."""
    data = path.read_bytes()
    data = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[:error.start].count(b"\n") + 1
        raise DataError(path, f"not UTF-8 text (byte 0x{data[error.start]:02x}): save it as 'CSV UTF-8'", line) from None


def _neutralised(text: str) -> str:
    """A cell a spreadsheet will show as text, not run: a formula start gets a leading quote. Text
    that is already quotes before a formula start gets one more, so `_restored` is exact."""
    return "'" + text if text.lstrip("'").startswith(FORMULA_STARTS) else text


def _restored(cell: str) -> str:
    return cell[1:] if cell.startswith("'") and cell[1:].lstrip("'").startswith(FORMULA_STARTS) else cell


def _csv_text(rows: list[dict], fields: tuple[str, ...]) -> str:
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=fields, quoting=csv.QUOTE_ALL)
    writer.writeheader()
    writer.writerows({k: _neutralised(v) if k in TEXT_FIELDS else ("" if v is None else v)
                      for k, v in row.items()} for row in rows)
    return buffer.getvalue()


def _csv_rows(path: Path, text: str) -> list[tuple[int, dict]]:
    """(line, row) per record; the line is where the record starts (the header is line 1). Rows of
    empty cells (spreadsheets leave some at the end) are skipped."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            raise DataError(path, "empty file: no header row")
        header = [name.strip() for name in header]
        for name in FIELDS:
            if name not in header:
                raise DataError(path, f"no '{name}' column (a rating file has {', '.join(FIELDS)})", 1)
        repeated = [name for name, count in Counter(header).items() if count > 1 and name in PAIR_FIELDS]
        if repeated:
            raise DataError(path, f"column '{repeated[0]}' appears twice", 1)
        rows, start = [], reader.line_num + 1
        for cells in reader:
            if any(cell.strip() for cell in cells):
                if len(cells) < len(header):
                    raise DataError(path, f"{len(cells)} cells but the header has {len(header)}", start)
                row = dict(zip(header, cells))
                rows.append((start, {k: _restored(v) if k in TEXT_FIELDS else v for k, v in row.items()}))
            start = reader.line_num + 1
    except csv.Error as error:
        raise DataError(path, f"not a CSV file ({error})", reader.line_num) from None
    return rows


def _jsonl_rows(path: Path, text: str) -> list[tuple[int, dict]]:
    rows = []
    # split on newlines only: str.splitlines also splits at U+2028 and the like, which JSON strings may hold
    for line, record in enumerate(text.split("\n"), start=1):
        if not record.strip():
            continue
        try:
            row = json.loads(record)
        except json.JSONDecodeError as error:
            raise DataError(path, f"not a JSON line ({error.msg})", line) from None
        if not isinstance(row, dict):
            raise DataError(path, "a line must be a JSON object", line)
        missing = [name for name in FIELDS if name not in row]
        if missing:
            raise DataError(path, f"no '{missing[0]}' field (a rating file has {', '.join(FIELDS)})", line)
        rows.append((line, row))
    return rows


def _rating(path: Path, line: int, value) -> float:
    """A rating cell as a float: a number or a numeric string; empty or anything else is an error."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise DataError(path, "rating is empty: every output needs a rating", line)
    if isinstance(value, bool):
        raise DataError(path, f"rating {value!r} is not a number", line)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise DataError(path, f"rating {_shown(value)} is not a number", line) from None
    if not math.isfinite(number):
        raise DataError(path, f"rating {_shown(value)} is not a finite number", line)
    return number


def _shown(value) -> str:
    """A cell in an error message: short, and on one line (repr escapes newlines)."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
