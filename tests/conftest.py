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

from helpers import build_once, build_tiny_bert, pair_rows, write_jsonl, write_tsv  # noqa: E402

torch.set_num_threads(1)  # two pytest workers share two cores with whatever else runs


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A random BERT (32 wide, 2 layers, 2 heads, no dropout) with a WordPiece tokenizer.

    Built once per session and shared by the xdist workers, so runs shared between workers
    (see helpers.build_once) name the same model path whichever worker built them."""
    return build_once(tmp_path_factory, "tiny_bert", build_tiny_bert)


@pytest.fixture(scope="session")
def reward_bert_dir(tmp_path_factory) -> Path:
    """A random BERT with one output: a reward model before training (tests only read it)."""
    return build_tiny_bert(tmp_path_factory.mktemp("reward_bert"), num_labels=1)


@pytest.fixture(scope="session")
def reward_llama_dir(tmp_path_factory) -> Path:
    """A random 2-layer Llama causal LM and its tokenizer (tests only read it)."""
    from tiny_models import save_tiny

    return save_tiny(tmp_path_factory.mktemp("reward_llama"))


@pytest.fixture(scope="session")
def tied_llama_dir(tmp_path_factory) -> Path:
    """A random 2-layer Llama causal LM whose LM head is its input embeddings (as SmolLM2's), and its tokenizer."""
    from tiny_models import tiny_llama, tiny_tokenizer

    folder = tmp_path_factory.mktemp("tied_llama")
    tokenizer = tiny_tokenizer(True)
    model = tiny_llama(len(tokenizer))
    model.config.tie_word_embeddings = True
    model.tie_weights()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> dict:
    """train.tsv (40 pairs), dev.tsv (16 pairs) and the same train rows as JSONL."""
    train, dev = pair_rows(40, seed=1), pair_rows(16, seed=2)

    def build(folder):
        write_tsv(folder / "train.tsv", train)
        write_tsv(folder / "dev.tsv", dev)
        write_jsonl(folder / "train.jsonl", train)

    folder = build_once(tmp_path_factory, "tiny_data", build)
    return {"train": folder / "train.tsv", "dev": folder / "dev.tsv", "train_jsonl": folder / "train.jsonl",
            "train_rows": train, "dev_rows": dev, "folder": folder}

