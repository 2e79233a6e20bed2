"""Readers, one per data shape, and the one place that decides where data lives."""
from restlm.data.examples import Example
from restlm.data.glue import load_hub_glue, read_mrpc
from restlm.data.location import data_root, resolve_data_path
from restlm.data.sentence_pairs import load_classification_split
from restlm.data.tabular import read_labelled

__all__ = [
    "Example",
    "data_root",
    "load_classification_split",
    "load_hub_glue",
    "read_labelled",
    "read_mrpc",
    "resolve_data_path",
]
