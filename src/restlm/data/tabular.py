"""Labelled text files with named columns (.tsv, .csv, .jsonl), read into Examples.

Every problem with a file raises DataError naming the file and the physical line
(the header is line 1 of a .tsv or .csv), so a user can open the file and fix it.
"""
from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Iterator, Sequence

from restlm.data.examples import Example
from restlm.errors import ConfigError, DataError

FORMATS = ("tsv", "csv", "jsonl")
SUFFIXES = {".tsv": "tsv", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


def read_labelled(
    path: str | Path,
    text_column: str,
    text_pair_column: str | None = None,
    label_column: str | None = "label",
    label_set: list | None = None,
    format: str | None = None,
    uid_columns: Sequence[str] = (),
) -> list[Example]:
    """Read every row of a labelled text file into an Example.

    `format` is "tsv", "csv" or "jsonl"; None infers it from the suffix. TSV is read with
    quoting off (text may hold `"`), CSV with normal quoting. A label is an integer, or,
    given `label_set`, any value of that list, mapped to its index. `label_column=None`
    reads unlabelled rows (label None). The uid joins the `uid_columns` values with "-",
    or is "<file stem>-<line>". Raises DataError on any bad row, naming file and line.
    """
    path = Path(path)
    fmt = table_format(path, format)
    if label_set is not None and len({str(v) for v in label_set}) != len(label_set):
        raise ConfigError("data.label_set", f"{label_set} has repeated values")
    columns = [c for c in (text_column, text_pair_column, label_column, *uid_columns) if c]
    text = read_text(path)
    rows = jsonl_rows(path, text, columns) if fmt == "jsonl" else delimited_rows(path, text, fmt, columns)
    examples = []
    for line, row in rows:
        label = _label(path, line, row, label_column, label_set) if label_column else None
        examples.append(Example(
            text=_text(path, line, row, text_column),
            text_pair=_text(path, line, row, text_pair_column) if text_pair_column else None,
            label=label,
            uid="-".join(str(row[c]) for c in uid_columns) if uid_columns else f"{path.stem}-{line}",
            meta={"path": str(path), "line": line},
        ))
    if not examples:
        raise DataError(path, "no data rows", line=_line_count(text) + 1)
    return examples


def table_format(path: Path, given: str | None) -> str:
    if given is not None:
        if given.lower() not in FORMATS:
            raise ConfigError("data.format", f"'{given}' is not one of {', '.join(FORMATS)}")
        return given.lower()
    fmt = SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise DataError(path, f"cannot tell the format from the suffix '{path.suffix}': "
                              "use .tsv, .csv or .jsonl, or give the format")
    return fmt


def read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DataError(path, f"cannot read: {error.strerror or error}") from None
    try:
        return data.decode("utf-8-sig")  # GLUE's MRPC files start with a byte-order mark
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise DataError(path, f"not UTF-8 text (byte {error.start})", line=line) from None


def _line_count(text: str) -> int:
    return text.count("\n") + (1 if text and not text.endswith("\n") else 0)


def delimited_rows(path: Path, text: str, fmt: str, columns: list[str]) -> Iterator[tuple[int, dict]]:
    """Yield (first physical line, {column: value}) for each data row after the header."""
    # StringIO, not str.splitlines(): splitlines also breaks on NEL and other Unicode separators
    reader = csv.reader(
        io.StringIO(text, newline=""),
        delimiter="\t" if fmt == "tsv" else ",",
        quoting=csv.QUOTE_NONE if fmt == "tsv" else csv.QUOTE_MINIMAL,
    )
    header, end = None, 0
    try:
        for fields in reader:
            start, end = end + 1, reader.line_num
            if not fields:
                continue  # a blank line
            if header is None:
                header = fields
                _check_header(path, start, header, columns)
            elif len(fields) != len(header):
                raise DataError(path, f"{len(fields)} fields where the header has {len(header)}"
                                      f" ({'tab' if fmt == 'tsv' else 'comma'}-separated)", line=start)
            else:
                yield start, dict(zip(header, fields))
    except csv.Error as error:
        raise DataError(path, f"cannot parse {fmt.upper()}: {error}", line=reader.line_num) from None


def _check_header(path: Path, line: int, header: list[str], columns: list[str]) -> None:
    repeated = next((name for i, name in enumerate(header) if name and name in header[:i]), None)
    if repeated is not None:  # csv and dicts would keep the last one without a word
        raise DataError(path, f"column '{repeated}' appears twice in the header", line=line)
    for column in columns:
        if column not in header:
            raise DataError(path, f"missing column '{column}' (the header has: {', '.join(header)})", line=line)


def jsonl_rows(path: Path, text: str, columns: list[str], field: str = "column") -> Iterator[tuple[int, dict]]:
    """Yield (line, object) for each non-blank line of a JSON-lines file's `text`.

    DataError naming file and line for malformed JSON, a line that is not an object, or a missing
    one of `columns` (called a `field` in the message: 'column', 'key').
    """
    for line, raw in enumerate(text.split("\n"), start=1):  # "\n" only, see delimited_rows
        if not raw.strip():
            continue
        try:
            row = json.loads(raw, object_pairs_hook=_refuse_repeated_keys)
        except json.JSONDecodeError as error:
            raise DataError(path, f"malformed JSON: {error.msg} (column {error.colno})", line=line) from None
        except _RepeatedKey as repeated:  # json.loads would keep the last one without a word
            raise DataError(path, f"{field} '{repeated.key}' appears twice in one object", line=line) from None
        if not isinstance(row, dict):
            raise DataError(path, f"expected a JSON object, found {type(row).__name__}", line=line)
        for column in columns:
            if column not in row:
                raise DataError(path, f"missing {field} '{column}'", line=line)
        yield line, row


class _RepeatedKey(Exception):
    def __init__(self, key: str):
        self.key = key


def _refuse_repeated_keys(pairs: list[tuple[str, object]]) -> dict:
    row = {}
    for key, value in pairs:
        if key in row:
            raise _RepeatedKey(key)
        row[key] = value
    return row


def _text(path: Path, line: int, row: dict, column: str) -> str:
    value = row[column]
    if not isinstance(value, str):
        raise DataError(path, f"column '{column}' holds {type(value).__name__}, not text", line=line)
    if not value.strip():
        raise DataError(path, f"empty text in column '{column}'", line=line)
    return value


def _label(path: Path, line: int, row: dict, column: str, label_set: list | None) -> int:
    raw = row[column]
    if label_set is not None:
        # compare as text: a TSV holds "1" where the label set (from YAML or JSON) holds 1
        keys = [str(value) for value in label_set]
        key = str(raw).strip()
        if key not in keys:
            raise DataError(path, f"label {raw!r} in column '{column}' is not in the label set {label_set}",
                            line=line)
        return keys.index(key)
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and re.fullmatch(r"-?\d+", raw.strip()):
        return int(raw)
    raise DataError(path, f"label {raw!r} in column '{column}' is not an integer; "
                          "give a label set to map label names to classes", line=line)
