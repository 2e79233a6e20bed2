"""GLUE sentence-pair data: MRPC from a local GLUE folder, or any GLUE task from the hub."""
from __future__ import annotations

from pathlib import Path

from restlm.data.examples import Example
from restlm.data.tabular import read_labelled
from restlm.errors import ConfigError, DataError, RestlmError
from restlm.hub import hub_reachable, offline

# GLUE's published sizes: a short count means the file was cut, or read with quoting on
# (MRPC text holds `"`, and csv's default quoting silently swallows rows)
MRPC_COUNTS = {"train": 3668, "dev": 408, "test": 1725}

HUB_GLUE = "nyu-mll/glue"
# (first text, second text or None) per task; stsb is left out: its label is a float score
HUB_COLUMNS = {
    "mrpc": ("sentence1", "sentence2"), "rte": ("sentence1", "sentence2"),
    "wnli": ("sentence1", "sentence2"), "qqp": ("question1", "question2"),
    "qnli": ("question", "sentence"), "mnli": ("premise", "hypothesis"),
    "sst2": ("sentence", None), "cola": ("sentence", None),
}


def read_mrpc(folder: str | Path, split: str) -> list[Example]:
    """Read MRPC in GLUE form from `folder/{split}.tsv` ("train", "dev" or "test").

    Returns sentence-pair Examples with label 0/1 (None for the unlabelled test split)
    and uid "<#1 ID>-<#2 ID>". Raises DataError when the row count is not GLUE's.
    """
    path = Path(folder) / f"{split}.tsv"
    examples = read_labelled(
        path, "#1 String", "#2 String",
        label_column=None if split == "test" else "Quality",  # GLUE's test.tsv has no labels
        label_set=[0, 1], format="tsv", uid_columns=("#1 ID", "#2 ID"),
    )
    expected = MRPC_COUNTS.get(split)
    if expected is not None and len(examples) != expected:
        raise DataError(path, f"{len(examples)} rows where GLUE's MRPC {split} has {expected}")
    return examples


def load_hub_glue(task: str = "mrpc", split: str = "train", name: str = HUB_GLUE) -> list[Example]:
    """Load a GLUE task split from the Hugging Face hub with `datasets.load_dataset`.

    Returns Examples with uid = the row's idx; label -1 (the hidden test labels) becomes
    None. Offline (HF_DATASETS_OFFLINE / HF_HUB_OFFLINE set and nothing cached, or no
    network) it raises RestlmError with one line that names the local alternative.
    """
    if task not in HUB_COLUMNS:
        raise ConfigError("data.config", f"'{task}' is not one of {', '.join(HUB_COLUMNS)}")
    hint = "download it while online, or use data.source 'glue_folder' with a local copy"
    if not offline() and not hub_reachable():
        # without this check, datasets retries for about 25 s and then fails anyway
        raise RestlmError(f"cannot reach the Hugging Face hub for {name}/{task}: {hint}")
    try:
        import datasets

        rows = datasets.load_dataset(name, task, split=split)
    except Exception as error:  # datasets raises many kinds; the user needs one line
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise RestlmError(f"cannot load {name}/{task} split '{split}' ({reason}): {hint}") from error
    first, second = HUB_COLUMNS[task]
    return [
        Example(
            text=row[first],
            text_pair=row[second] if second else None,
            label=None if row["label"] < 0 else int(row["label"]),
            uid=str(row["idx"]),
        )
        for row in rows
    ]
