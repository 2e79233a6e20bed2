"""Preference pairs (a prompt, a chosen and a rejected response) from JSON lines or the hub.

A JSONL line is {"prompt": ..., "chosen": ..., "rejected": ...}; other keys are ignored.
HH-RLHF as shipped in shared/data: the prompt ends with "\\n\\nAssistant:" and both responses
are the final assistant turn. A response may be empty (four rejected ones there are).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from restlm.data.tabular import jsonl_rows, read_text
from restlm.errors import DataError

KEYS = ("prompt", "chosen", "rejected")
ASSISTANT = "\n\nAssistant:"


@dataclass(frozen=True)
class PreferencePair:
    """One judgement: `chosen` was preferred to `rejected` as the answer to `prompt`."""

    prompt: str
    chosen: str
    rejected: str
    uid: str = ""


def read_preferences(path: str | Path, limit: int | None = None) -> list[PreferencePair]:
    """Every pair of a JSONL file, in file order (the first `limit` only when given).

    Raises DataError naming the file and line for malformed JSON, a line that is not an
    object, a missing key or a value that is not a string, and for a file with no pairs.
    """
    path = Path(path)
    pairs = []
    for line, row in jsonl_rows(path, read_text(path), [], field="key"):  # _pair names a missing key
        pairs.append(_pair(row, f"{path.stem}-{line}", lambda message, line=line: DataError(path, message, line)))
        if limit is not None and len(pairs) >= limit:
            break
    if not pairs:
        raise DataError(path, "no preference pairs")
    return pairs


def load_hub_preferences(name: str, split: str = "train", config: str | None = None,
                         limit: int | None = None) -> list[PreferencePair]:
    """Pairs from a Hugging Face dataset (needs the network or the datasets cache).

    Rows with prompt/chosen/rejected columns are read as they are; rows with only
    chosen/rejected holding whole dialogues (Anthropic/hh-rlhf) are cut after the last
    "\\n\\nAssistant:" they share. Raises DataError naming the dataset and row.
    """
    from datasets import load_dataset

    try:
        rows = load_dataset(name, config, split=split)
    except Exception as error:  # noqa: BLE001 - offline, unknown name, bad split: one line each
        raise DataError(name, f"cannot load split '{split}': {type(error).__name__}: "
                              f"{str(error).splitlines()[0][:200] if str(error) else ''}") from None
    pairs = []
    for index, row in enumerate(rows):
        if "prompt" not in row and "chosen" in row and "rejected" in row:
            row = dict(zip(KEYS, split_dialogues(row["chosen"], row["rejected"])))
        pairs.append(_pair(row, f"{name}-{split}-{index}",
                           lambda message, index=index: DataError(f"{name}[{split}]", f"row {index}: {message}")))
        if limit is not None and len(pairs) >= limit:
            break
    return pairs


def split_dialogues(chosen: str, rejected: str) -> tuple[str, str, str]:
    """(prompt, chosen response, rejected response) of two whole dialogues sharing a prompt.

    The prompt runs to the end of the last "\\n\\nAssistant:" of the text both share.
    """
    shared = 0
    while shared < min(len(chosen), len(rejected)) and chosen[shared] == rejected[shared]:
        shared += 1
    cut = chosen.rfind(ASSISTANT, 0, shared)
    cut = cut + len(ASSISTANT) if cut >= 0 else shared
    return chosen[:cut], chosen[cut:], rejected[cut:]


def _pair(row, uid: str, error) -> PreferencePair:
    if not isinstance(row, dict):
        raise error(f"expected a JSON object, found {type(row).__name__}")
    for key in KEYS:
        if key not in row:
            raise error(f"missing key '{key}'")
        if not isinstance(row[key], str):
            raise error(f"key '{key}' holds {type(row[key]).__name__}, not text")
    return PreferencePair(row["prompt"], row["chosen"], row["rejected"], uid=uid)
