"""The one record every data shape is read into."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Example:
    """One input, with its gold output when the data has one.

    For a classifier, `text` (and `text_pair` for sentence pairs) is the input and `label`
    the integer class. For generative policies, `text` is the prompt or source and
    `target` the reference output.
    """

    text: str
    text_pair: str | None = None
    label: int | None = None
    target: str | None = None
    uid: str = ""
    meta: dict = field(default_factory=dict, compare=False, hash=False)
