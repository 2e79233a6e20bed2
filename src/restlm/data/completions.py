"""Prompt -> completion pairs for supervised fine-tuning, from JSON lines {"prompt", "completion"}."""
from __future__ import annotations

from pathlib import Path

from restlm.data.examples import Example
from restlm.data.tabular import jsonl_rows, read_text
from restlm.errors import DataError


def read_completions(path: str | Path) -> list[Example]:
    """Example(text=prompt, target=completion) per non-blank line, uid "<file stem>-<line>".

    Raises DataError naming file and line for malformed JSON, a line that is not an object,
    a missing "prompt" or "completion", a value that is not text, or a file with no rows.
    """
    path = Path(path)
    examples = []
    for line, row in jsonl_rows(path, read_text(path), ["prompt", "completion"], field="key"):
        for key in ("prompt", "completion"):
            if not isinstance(row[key], str):
                raise DataError(path, f"key '{key}' holds {type(row[key]).__name__}, not text", line=line)
        examples.append(Example(text=row["prompt"], target=row["completion"], uid=f"{path.stem}-{line}"))
    if not examples:
        raise DataError(path, "no prompt-completion rows")
    return examples
