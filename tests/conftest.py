"""Session fixtures: a tiny random BERT classifier saved locally and tiny sentence-pair data."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests/helpers.py

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

from helpers import build_tiny_bert, pair_rows, write_jsonl, write_tsv  # noqa: E402

torch.set_num_threads(1)  # two pytest workers share two cores with whatever else runs


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A random BERT (32 wide, 2 layers, 2 heads, no dropout) with a WordPiece tokenizer."""
    return build_tiny_bert(tmp_path_factory.mktemp("tiny_bert"))


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> dict:
    """train.tsv (40 pairs), dev.tsv (16 pairs) and the same train rows as JSONL."""
    folder = tmp_path_factory.mktemp("tiny_data")
    train, dev = pair_rows(40, seed=1), pair_rows(16, seed=2)
    return {"train": write_tsv(folder / "train.tsv", train), "dev": write_tsv(folder / "dev.tsv", dev),
            "train_jsonl": write_jsonl(folder / "train.jsonl", train), "train_rows": train, "dev_rows": dev,
            "folder": folder}
