"""The names inside a run directory: every stage key and per-stage file name, spelled here only.

A stage key is a path of parts: `baselines/majority`, `seed0/sft`, `seed0/n100/g1/grow`,
`seed0/n100/g1/i2`. Checkpoints live at `checkpoints/<key>/` (`RunDir.checkpoint_dir`); a Grow
step's set at `grown/<key with _ for />.jsonl`. Other modules, benchmarks and tests call these
functions instead of formatting keys (tests/test_run_layout.py checks that none does).
"""
from __future__ import annotations

import re
from pathlib import Path

MAJORITY = "baselines/majority"
ZERO_SHOT = "baselines/zero_shot"
STANDALONE = "rest"
"""The trajectory prefix of a ReST run outside an experiment (`ReST(..., run_dir=...).run()`)."""


def size_key(size: int | None) -> str:
    """A grow size N as a key part: the number, or 'all' (every training input)."""
    return "all" if size is None else str(size)


def seed_stage(seed: int, name: str) -> str:
    """A stage of one seed outside any trajectory: 'init', 'untrained', 'sft'."""
    return f"seed{seed}/{name}"


def trajectory(seed: int, size: int | None) -> str:
    """The prefix of one ReST trajectory: a seed and a grow size."""
    return f"seed{seed}/n{size_key(size)}"


def grow_stage(prefix: str, g: int) -> str:
    """Grow step g of a trajectory: `seed0/n100/g1/grow`."""
    return f"{prefix}/g{g}/grow"


def improve_stage(prefix: str, g: int, i: int) -> str:
    """Improve step i of Grow step g of a trajectory: `seed0/n100/g1/i2`."""
    return f"{prefix}/g{g}/i{i}"


_GROW = re.compile(r"(?P<prefix>.+)/g(?P<g>[0-9]+)/grow")
_IMPROVE = re.compile(r"(?P<prefix>.+)/g(?P<g>[0-9]+)/i(?P<i>[0-9]+)")


def is_grow_stage(key: str) -> bool:
    """Whether a stage key is a Grow step's (`grow_stage`)."""
    return _GROW.fullmatch(key) is not None


def improve_step_of(key: str) -> int | None:
    """The I of an Improve step's key (`seed0/n8/g1/i2` -> 2); None for any other key."""
    match = _IMPROVE.fullmatch(key)
    return int(match["i"]) if match else None


def grow_stage_of(key: str) -> str | None:
    """The Grow step whose set an Improve step trained on (`x/g1/i2` -> `x/g1/grow`); None for other keys."""
    match = _IMPROVE.fullmatch(key)
    return grow_stage(match["prefix"], int(match["g"])) if match else None


def is_under(key: str, prefix: str) -> bool:
    """Whether a stage key is `prefix` or a stage inside it (`seed0/rest/g1/i2` is under `seed0/rest`, and
    `seed0/rest_em/final` is not)."""
    return key == prefix or key.startswith(prefix + "/")


def grown_file(key: str) -> Path:
    """A Grow stage's set, relative to the run directory."""
    return Path("grown") / f"{key.replace('/', '_')}.jsonl"


def ratings_file(key: str) -> Path:
    """The spreadsheet people rate a Grow stage's samples in (human feedback), relative to the run directory."""
    return grown_file(key).with_suffix(".ratings.csv")


def checkpoint_dir(key: str) -> Path:
    """A stage's checkpoint folder, relative to the run directory (`RunDir.checkpoint_dir` adds the run's path)."""
    return Path("checkpoints") / key


# ---- `restlm compare`: per seed a start stage, per (seed, method) a prefix and a final evaluation
COMPARE_SUMMARY = "compare.json"  # the summary of a finished comparison (compare/summary.py)
COMPARE_MARKDOWN, COMPARE_HTML, COMPARE_FIGURE = "compare.md", "compare.html", "proxy_vs_gold.png"
COMPARE_OUTPUTS = (COMPARE_SUMMARY, COMPARE_MARKDOWN, COMPARE_HTML, COMPARE_FIGURE)
"""What a finished comparison writes at the run's top level: stale once a method is rerun."""


def compare_start(seed: int) -> str:
    """The start policy of every method of a seed (SFT on the references, or the pretrained model)."""
    return seed_stage(seed, "start")


def method_prefix(seed: int, method: str) -> str:
    """The stages of one method run: `seed0/rest/g1/i2`, `seed0/ppo`."""
    return f"seed{seed}/{method}"


def method_final(seed: int, method: str) -> str:
    """The final evaluation of one method run (held-out outputs, KL, distinct-2)."""
    return f"{method_prefix(seed, method)}/final"


def final_parts(key: str) -> tuple[int, str] | None:
    """(seed, method) of a method_final key (`seed0/rest/final` -> (0, 'rest')); None for any other key."""
    match = _FINAL.fullmatch(key)
    return (int(match["seed"]), match["name"]) if match else None


_FINAL = re.compile(r"seed(?P<seed>[0-9]+)/(?P<name>[^/]+)/final")
_SEED_PART = re.compile(r"seed[0-9]+/(?P<name>[^/]+)(/.*)?")


def method_of_stage(key: str) -> str | None:
    """The name after a stage key's seed part (`seed0/rest/g1/i2` -> 'rest', `seed0/start` -> 'start'): for a
    compare stage, its method or variant; None for keys outside any seed (`baselines/majority`)."""
    match = _SEED_PART.fullmatch(key)
    return match["name"] if match else None


def online_state(key: str) -> Path:
    """An online method's state at its last saved step (weights, optimiser, random generators, history),
    from which a killed run resumes mid-way; deleted when the method finishes."""
    return Path("checkpoints") / f"{key}.online_state.pt"


def stage_file(key: str, suffix: str) -> Path:
    """A file a stage writes beside its record (PPO's metrics), relative to the run directory."""
    return Path("logs") / f"{key.replace('/', '_')}{suffix}"
