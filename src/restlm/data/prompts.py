"""Prompts to sample from: PPO's JSON lines (`read_prompts`), and a user's own task's prompt tables
(`read_prompt_table`: .jsonl/.csv/.tsv with named columns; `load_hub_prompts`: a Hugging Face dataset).

A PPO line is {"prompt": ...} (or {"text": ...}), with an optional "target": the reference a
generation reward such as chrF scores the output against. Other keys are ignored.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from restlm.data.examples import Example
from restlm.data.tabular import delimited_rows, jsonl_rows, read_text, table_format
from restlm.errors import DataError

TEXT_KEYS = ("prompt", "text")


def read_prompts(path: str | Path) -> list[Example]:
    """Example(text=prompt, target=target or None) per non-blank line, uid "<file stem>-<line>".

    Raises DataError naming file and line for malformed JSON, a line that is not an object, no
    "prompt" or "text", an empty prompt, a prompt or target that is not text, or a file with no rows.
    """
    path = Path(path)
    examples = []
    for line, row in jsonl_rows(path, read_text(path), [], field="key"):
        key = next((k for k in TEXT_KEYS if k in row), None)
        if key is None:
            raise DataError(path, "missing key 'prompt' (or 'text')", line=line)
        for name in (key, "target"):
            if name in row and not isinstance(row[name], str):
                raise DataError(path, f"key '{name}' holds {type(row[name]).__name__}, not text", line=line)
        if not row[key].strip():
            raise DataError(path, f"empty text in key '{key}'", line=line)
        examples.append(Example(text=row[key], target=row.get("target"), uid=f"{path.stem}-{line}"))
    if not examples:
        raise DataError(path, "no prompts")
    return examples


def read_prompt_table(path: str | Path, prompt_column: str = "prompt", reference_column: str | None = None,
                      extra_columns: Sequence[str] = (), format: str | None = None) -> list[Example]:
    """Prompts of a user's task from a .jsonl, .csv or .tsv file with named columns.

    Example(text=the prompt, target=the reference or None, uid "<stem>-<line>", meta: path, line and
    each of `extra_columns`, for a reward function to read). DataError naming file and line for a
    missing column, an empty prompt, a prompt or reference that is not text, or a file with no rows.
    """
    path = Path(path)
    fmt = table_format(path, format)
    columns = [c for c in (prompt_column, reference_column, *extra_columns) if c]
    text = read_text(path)
    rows = jsonl_rows(path, text, columns) if fmt == "jsonl" else delimited_rows(path, text, fmt, columns)
    examples = [_prompt_example(path, line, row, prompt_column, reference_column, extra_columns)
                for line, row in rows]
    if not examples:
        raise DataError(path, "no prompts")
    return examples


def load_hub_prompts(name: str, config: str | None, split: str, prompt_column: str = "prompt",
                     reference_column: str | None = None, extra_columns: Sequence[str] = ()) -> list[Example]:
    """The same Examples from a split of a Hugging Face dataset (needs the network or the cache)."""
    from restlm.errors import RestlmError

    try:
        import datasets

        rows = datasets.load_dataset(name, config, split=split)
    except Exception as error:  # datasets raises many kinds; the user needs one line
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise RestlmError(f"cannot load the dataset {name} ({config}) split '{split}': {reason}") from None
    where = f"{name}:{split}"
    missing = [c for c in (prompt_column, reference_column, *extra_columns) if c and c not in rows.column_names]
    if missing:
        raise DataError(where, f"missing column '{missing[0]}' (it has: {', '.join(rows.column_names)})")
    examples = [_prompt_example(where, i, row, prompt_column, reference_column, extra_columns)
                for i, row in enumerate(rows, start=1)]
    if not examples:
        raise DataError(where, "no prompts")
    return examples


def _prompt_example(path, line: int, row: dict, prompt_column: str, reference_column: str | None,
                    extra_columns: Sequence[str]) -> Example:
    for column in (prompt_column, reference_column):
        if column and not isinstance(row[column], str):
            raise DataError(path, f"column '{column}' holds {type(row[column]).__name__}, not text", line=line)
    if not row[prompt_column].strip():
        raise DataError(path, f"empty text in column '{prompt_column}'", line=line)
    stem = Path(str(path)).stem
    return Example(text=row[prompt_column], target=row[reference_column] if reference_column else None,
                   uid=f"{stem}-{line}", meta={"path": str(path), "line": line,
                                               **{column: row[column] for column in extra_columns}})
