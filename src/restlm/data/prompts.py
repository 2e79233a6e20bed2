"""Prompts to sample from (PPO's training and evaluation prompts), from JSON lines.

A line is {"prompt": ...} (or {"text": ...}), with an optional "target": the reference a
generation reward such as chrF scores the output against. Other keys are ignored.
"""
from __future__ import annotations

from pathlib import Path

from restlm.data.examples import Example
from restlm.data.tabular import jsonl_rows, read_text
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
