"""Prompt -> completion pairs for supervised fine-tuning, from JSON lines {"prompt", "completion"}."""
from __future__ import annotations

import json
from pathlib import Path

from restlm.data.examples import Example
from restlm.data.tabular import _read_text
from restlm.errors import DataError


def read_completions(path: str | Path) -> list[Example]:
    """Example(text=prompt, target=completion) per non-blank line, uid "<file stem>-<line>".

    Raises DataError naming file and line for malformed JSON, a line that is not an object,
    a missing "prompt" or "completion", a value that is not text, or a file with no rows.
    """
    path = Path(path)
    examples = []
    for line, raw in enumerate(_read_text(path).split("\n"), start=1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw)
        except json.JSONDecodeError as error:
            raise DataError(path, f"malformed JSON: {error.msg} (column {error.colno})", line=line) from None
        if not isinstance(row, dict):
            raise DataError(path, f"expected a JSON object, found {type(row).__name__}", line=line)
        for key in ("prompt", "completion"):
            if key not in row:
                raise DataError(path, f"missing key '{key}'", line=line)
            if not isinstance(row[key], str):
                raise DataError(path, f"key '{key}' holds {type(row[key]).__name__}, not text", line=line)
        examples.append(Example(text=row["prompt"], target=row["completion"], uid=f"{path.stem}-{line}"))
    if not examples:
        raise DataError(path, "no prompt-completion rows")
    return examples
