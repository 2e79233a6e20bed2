"""The names of a classification task's classes, for the `id2label` of a saved classifier.

Without them a checkpoint says LABEL_0 / LABEL_1 in a transformers `pipeline()`, and a reader
has to know which index is the positive class.
"""
from __future__ import annotations

# GLUE's own class names (the hub's ClassLabel names), in class-index order
GLUE_LABEL_NAMES = {
    "mrpc": ["not_equivalent", "equivalent"], "rte": ["entailment", "not_entailment"],
    "wnli": ["not_entailment", "entailment"], "qqp": ["not_duplicate", "duplicate"],
    "qnli": ["entailment", "not_entailment"], "mnli": ["entailment", "neutral", "contradiction"],
    "sst2": ["negative", "positive"], "cola": ["unacceptable", "acceptable"],
}


def label_names(data) -> list[str] | None:
    """Class names in index order for a data config (restlm.config.DataConfig), or None.

    A local GLUE folder is read as MRPC; a hub dataset gives GLUE's names of its config; a file
    gives its `label_set` as written. Integer labels without a label set have no names (None).
    """
    if data.source == "glue_folder":
        return list(GLUE_LABEL_NAMES["mrpc"])
    if data.source == "hub" and data.name in ("nyu-mll/glue", "glue"):  # another dataset may order its classes otherwise
        names = GLUE_LABEL_NAMES.get(data.config or "mrpc")
        return list(names) if names else None
    if data.source == "file" and data.label_set:
        return [str(value) for value in data.label_set]
    return None
