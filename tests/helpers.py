"""Shared builders for the tests: a tiny random BERT, tiny sentence-pair files, CLI runners."""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

WORDS = ("the a cat dog bird fish sat ran flew swam on in under mat house tree car road "
         "red blue green big small fast slow is was and of to it he she they").split()
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def write_vocab(folder: Path) -> Path:
    """A WordPiece vocab file holding the special tokens, WORDS and a plural suffix."""
    path = Path(folder) / "vocab.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(SPECIAL + list(WORDS) + ["##s"]) + "\n")
    return path


def build_tiny_bert(folder: Path, seed: int = 0, dropout: float = 0.0, num_labels: int = 2) -> Path:
    """Save a random 2-layer, 32-wide BERT classifier and its tokenizer under `folder`."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    folder = Path(folder)
    vocab = write_vocab(folder / "vocab_src")
    tokenizer = BertTokenizer(vocab=str(vocab))
    config = BertConfig(vocab_size=len(SPECIAL) + len(WORDS) + 1, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=37, max_position_embeddings=64,
                        hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout, num_labels=num_labels)
    torch.manual_seed(seed)
    model = BertForSequenceClassification(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def pair_rows(n: int, seed: int) -> list[tuple[str, str, int]]:
    """n sentence pairs, labels alternating 1, 0, ...; a cue word tells the label (so a tiny
    model can learn it), and one pair in five carries the other label's cue (so it cannot be perfect)."""
    rng = random.Random(seed)
    cues = {1: ["red", "big", "fast"], 0: ["blue", "small", "slow"]}
    neutral = [w for w in WORDS if w not in cues[0] + cues[1]]
    rows = []
    for j in range(n):
        label = (j + 1) % 2
        cue_label = label if j % 5 else 1 - label
        first = " ".join(rng.sample(neutral, rng.randint(2, 6)) + [rng.choice(cues[cue_label])])
        second = " ".join(rng.sample(neutral, rng.randint(1, 5)))
        rows.append((first, second, label))
    return rows


def write_tsv(path: Path, rows, header=("sentence1", "sentence2", "label")) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\t".join(header) + "\n" + "".join("\t".join(str(v) for v in r) + "\n" for r in rows))
    return path


def write_jsonl(path: Path, rows) -> Path:
    path = Path(path)
    path.write_text("".join(json.dumps({"sentence1": a, "sentence2": b, "label": c}) + "\n" for a, b, c in rows))
    return path


def tiny_overrides(model_dir: Path, train: Path, dev: Path, output_dir: Path, **extra) -> list[str]:
    """`key=value` overrides of a tiny, fast, offline ReST run (2 Grow steps x 2 Improve steps)."""
    values = {
        "model.name": str(model_dir), "model.max_length": 32,
        "data.source": "file", "data.train": str(train), "data.dev": str(dev),
        "train.epochs": 1, "train.batch_size": 8, "train.eval_batch_size": 16, "train.learning_rate": 1e-2,
        "train.dtype": "float32",  # the tiny runs' exact figures must not depend on the machine's bf16 speed
        "ppo.dtype": "float32", "grpo.dtype": "float32",
        "rest.grow_steps": 2, "rest.improve_steps": 2, "rest.grow_sizes": "[8,null]",
        "rest.improve_learning_rate": 4e-3,
        "baselines.zero_shot.backend": "none", "run.tensorboard": "false", "run.seeds": 1,
        "run.output_dir": str(output_dir),
    }
    values.update({k.replace("__", "."): v for k, v in extra.items()})
    return [f"{k}={v}" for k, v in values.items()]


def cli_env(**extra) -> dict:
    """Environment of a `restlm` subprocess: offline, one thread (the machine is shared)."""
    env = dict(os.environ)
    env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
                "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


def restlm_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "restlm.cli", *args]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_two(args: list[str], program: tuple[str, ...] = ("-m", "restlm.cli")) -> subprocess.Popen:
    """Start `python -m restlm.cli ARGS` (or `python PROGRAM ARGS`) as 2 CPU processes (gloo) under
    `accelerate launch`.

    Not `--cpu` and not a bare `--num_processes 2`: on a machine without GPUs both start ONE
    process; `--multi_gpu` with ACCELERATE_USE_CPU=true starts two.
    """
    accelerate = Path(sys.executable).parent / "accelerate"
    command = [str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
               "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(free_port()),
               *program, *args]
    return subprocess.Popen(command, env=cli_env(ACCELERATE_USE_CPU="true"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def run_cli(*args: str, cwd=None, timeout: float = 300, **env) -> subprocess.CompletedProcess:
    """Run `python -m restlm.cli ARGS` to the end; returns the completed process (text mode)."""
    return subprocess.run(restlm_cmd(*args), capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          env=cli_env(**env))


def set_args(overrides: list[str]) -> list[str]:
    return [a for o in overrides for a in ("--set", o)]


def stderr_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def build_once(tmp_path_factory, name: str, build) -> Path:
    """A folder that `build(folder)` fills once per test session, shared by all pytest-xdist workers.

    The first worker to ask builds it under a file lock; the others wait and reuse it, so an
    expensive run is not repeated on each worker. A build that raises leaves no folder behind.
    """
    import fcntl
    import shutil

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the session's folder, above each worker's own
    folder = root / f"shared_{name}"
    with open(root / f"shared_{name}.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / ".built").exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            try:
                build(folder)
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)
                raise
            (folder / ".built").touch()
    return folder


GOOD_CUES, BAD_CUES = ["red", "big", "fast"], ["blue", "small", "slow"]


def cue_pairs(n: int, seed: int):
    """n preference pairs: the chosen response holds a 'good' cue word, the rejected one a 'bad' one; the rest is noise."""
    from restlm.data.preferences import PreferencePair

    rng = random.Random(seed)
    neutral = [w for w in WORDS if w not in GOOD_CUES + BAD_CUES]

    def noise(k):
        return " ".join(rng.sample(neutral, k))

    return [PreferencePair(noise(rng.randint(3, 8)), f"{noise(2)} {rng.choice(GOOD_CUES)} {noise(1)}",
                           f"{noise(2)} {rng.choice(BAD_CUES)} {noise(1)}", uid=str(i)) for i in range(n)]


def assert_one_train_step_changes_every_parameter(policy, examples, outputs):
    """One BC step at a large learning rate on (examples, outputs) moves every trainable tensor and raises
    the likelihood of the outputs."""
    import numpy as np
    import torch

    from restlm.config import TrainConfig
    from restlm.policies.base import TrainItem
    from restlm.training import train_policy

    before = {n: p.detach().clone() for n, p in policy.model.named_parameters() if p.requires_grad}
    items = [TrainItem(e, o) for e, o in zip(examples, outputs, strict=True)]
    log_probs_before = policy.log_probs(examples, outputs)
    config = TrainConfig(batch_size=len(items), weight_decay=0.0, warmup_ratio=0.0)
    stats = train_policy(policy, items, config, 1e-2, 1, seed=0)
    assert (stats.steps, stats.examples) == (1, len(items)) and np.isfinite(stats.mean_loss)
    unchanged = [n for n, p in policy.model.named_parameters() if n in before and torch.equal(p, before[n])]
    assert unchanged == []
    assert policy.log_probs(examples, outputs).sum() > log_probs_before.sum()


def safetensors_dtypes(folder: Path) -> set[str]:
    """The dtypes ('F32', 'BF16', ...) of every tensor in the safetensors files under `folder`."""
    from safetensors import safe_open

    found = set()
    for path in Path(folder).rglob("*.safetensors"):
        with safe_open(str(path), "pt") as f:
            found |= {f.get_slice(k).get_dtype() for k in f.keys()}
    return found
