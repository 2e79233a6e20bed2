"""Human feedback in place of a reward model: a file of samples for people to rate, read back as rewards.

    write_rating_file("to_rate.csv", examples, outputs)          # uid, prompt, output, rating (empty)
    ... people fill in `rating` ...
    rewards = read_rewards("to_rate.csv", mode="rank")          # aligned to the rows as written
    reward = human_feedback_reward("to_rate.csv", mode="rank")  # a Reward for ReST or PPO

Two modes, both in the `rating` column:
  rate  a number per output, higher is better; the reward is that number.
  rank  a rank per output among the outputs of the same input (same uid and prompt), 1 the best;
        ties share a rank. The reward is (g - rank) / (g - 1) for a group of g outputs:
        1 for the best, 0 for the worst, 1 when the group has one output.
A file is JSONL or CSV, by its suffix (.jsonl / .csv). Every rating must be filled in.
"""
from __future__ import annotations

import csv
import io
import json
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from restlm.data.examples import Example
from restlm.errors import DataError, RestlmError
from restlm.rewards.base import Reward
from restlm.runs import write_atomic

FIELDS = ("uid", "prompt", "output", "rating")
MODES = ("rate", "rank")


@dataclass(frozen=True)
class RatedSample:
    """One filled row: which input, which output, its rating, and the file line it came from."""

    uid: str
    prompt: str
    output: str
    rating: float
    line: int

    @property
    def group(self) -> tuple[str, str]:
        return self.uid, self.prompt


def write_rating_file(path: str | Path, examples: Sequence[Example], outputs: Sequence[str]) -> Path:
    """One row per (example, output) pair, in order, with an empty rating; .jsonl or .csv by suffix.

    The prompt written is the example's text (what a person reads), not the policy's template.
    """
    path = Path(path)
    if len(examples) != len(outputs):
        raise RestlmError(f"{len(examples)} examples but {len(outputs)} outputs")
    rows = [{"uid": e.uid, "prompt": e.text, "output": str(o), "rating": None} for e, o in zip(examples, outputs)]
    if _format(path) == "jsonl":
        write_atomic(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    else:
        write_atomic(path, _csv_text(rows))
    return path


def read_ratings(path: str | Path) -> list[RatedSample]:
    """Every row of a filled file, in file order; DataError naming file and line for a row whose
    rating is empty or not a finite number, or for a missing column."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "no such rating file")
    rows = _jsonl_rows(path) if _format(path) == "jsonl" else _csv_rows(path)
    samples = []
    for line, row in rows:
        missing = [name for name in FIELDS if name not in row]
        if missing:
            raise DataError(path, f"no '{missing[0]}' field (a rating file has {', '.join(FIELDS)})", line)
        samples.append(RatedSample(str(row["uid"] or ""), str(row["prompt"]), str(row["output"]),
                                   _rating(path, line, row["rating"]), line))
    return samples


def ratings_to_rewards(samples: Sequence[RatedSample], mode: str = "rate", path: str | Path = "ratings") -> np.ndarray:
    """One reward per sample, in order: the rating itself ('rate'), or 1 for rank 1 down to 0 for
    the last rank of its group ('rank'). A rank outside 1..g, or not whole, raises DataError."""
    if mode not in MODES:
        raise RestlmError(f"human feedback mode must be one of {MODES}, not {mode!r}")
    if mode == "rate":
        return np.array([s.rating for s in samples], dtype=np.float64)
    sizes = defaultdict(int)
    for sample in samples:
        sizes[sample.group] += 1
    rewards = []
    for sample in samples:
        size = sizes[sample.group]
        if sample.rating != int(sample.rating) or not 1 <= sample.rating <= size:
            raise DataError(path, f"rank {sample.rating:g} is not a whole number in 1..{size} "
                                  f"(its input has {size} outputs)", sample.line)
        rewards.append((size - sample.rating) / (size - 1) if size > 1 else 1.0)
    return np.array(rewards, dtype=np.float64)


def read_rewards(path: str | Path, mode: str = "rate") -> np.ndarray:
    """The rewards of a filled file, aligned to its rows (the samples as `write_rating_file` wrote them)."""
    return ratings_to_rewards(read_ratings(path), mode, path)


def human_feedback_reward(path: str | Path, mode: str = "rate") -> Reward:
    """A Reward that looks up each (example, output) pair in a filled rating file.

    A pair is found by example uid, example text and output; a pair rated more than once gets
    the mean of its rewards. A pair not in the file raises DataError naming the file. Rank
    rewards are already in [0, 1]; rated ones are min-max scaled by `normalised()`.
    """
    samples = read_ratings(path)
    rewards = ratings_to_rewards(samples, mode, path)
    found = defaultdict(list)
    for sample, reward in zip(samples, rewards):
        found[(sample.uid, sample.prompt, sample.output)].append(reward)
    table = {key: float(np.mean(values)) for key, values in found.items()}

    def score(policy, examples, outputs):
        missing = [(e, o) for e, o in zip(examples, outputs, strict=True) if (e.uid, e.text, str(o)) not in table]
        if missing:
            example, output = missing[0]
            raise DataError(path, f"no rating for output {str(output)[:60]!r} of example "
                                  f"{example.uid or example.text[:40]!r} ({len(missing)} pairs unrated)")
        return [table[(e.uid, e.text, str(o))] for e, o in zip(examples, outputs)]

    return Reward(f"human:{mode}:{Path(path).name}", score, True, (lambda s: s) if mode == "rank" else None)


# ---------------------------------------------------------------- plumbing
def _format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in (".jsonl", ".csv"):
        raise DataError(path, "a rating file is .jsonl or .csv")
    return suffix[1:]


def _csv_text(rows: list[dict]) -> str:
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=FIELDS)
    writer.writeheader()
    writer.writerows({**row, "rating": ""} for row in rows)
    return buffer.getvalue()


def _csv_rows(path: Path) -> list[tuple[int, dict]]:
    """(line, row) per record; the line is where the record starts (the header is line 1)."""
    with open(path, newline="", encoding="utf-8-sig") as handle:  # spreadsheets like to add a BOM
        reader = csv.DictReader(handle)
        rows, start = [], 2
        for row in reader:
            rows.append((start, row))
            start = reader.line_num + 1
        return rows


def _jsonl_rows(path: Path) -> list[tuple[int, dict]]:
    rows = []
    for line, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not text.strip():
            continue
        try:
            row = json.loads(text)
        except json.JSONDecodeError as error:
            raise DataError(path, f"not a JSON line ({error.msg})", line) from None
        if not isinstance(row, dict):
            raise DataError(path, "a line must be a JSON object", line)
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
        raise DataError(path, f"rating {value!r} is not a number", line) from None
    if not math.isfinite(number):
        raise DataError(path, f"rating {value!r} is not a finite number", line)
    return number
