"""`restlm inspect RUN_DIR`: per Grow step, the reward distribution, how many rows each Improve
threshold kept, and the best and worst grown samples, so a person can spot reward hacking."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from restlm import run_layout as layout
from restlm.atomic_files import read_jsonl
from restlm.errors import RunDirError


def _text(row: dict, width: int = 90) -> str:
    source = row["text"] if not row.get("text_pair") else f"{row['text']} ||| {row['text_pair']}"
    short = source if len(source) <= width else source[: width - 3] + "..."
    return f"{short!r} -> {row['output']!r} (gold {row['gold']!r})"


def _distribution(rewards: np.ndarray) -> str:
    q = np.percentile(rewards, [0, 10, 50, 90, 100])
    return (f"mean {rewards.mean():.4g}  min {q[0]:.4g}  p10 {q[1]:.4g}  median {q[2]:.4g}  "
            f"p90 {q[3]:.4g}  max {q[4]:.4g}")


def describe_grow_step(run_dir: Path, key: str, record: dict, improve: list[tuple[str, dict]], shown: int) -> list[str]:
    """Lines describing one Grow step and the Improve steps that used it."""
    rows = read_jsonl(run_dir / record["grown_file"])
    rewards = np.array([r["reward"] for r in rows])
    grown = [r for r in rows if r["source"] == "grown"]
    higher_is_better = _higher_is_better(run_dir, record)
    better, keeps = ("higher", ">=") if higher_is_better else ("lower", "<=")
    lines = [f"== {key}: {len(rows)} rows ({len(grown)} grown, {len(rows) - len(grown)} original)",
             f"   reward {_reward_name(run_dir, record)}: {better} is better; an Improve step keeps rows with "
             f"reward {keeps} its threshold",
             f"   reward (all rows):   {_distribution(rewards)}"]
    if grown:
        lines.append(f"   reward (grown only): {_distribution(np.array([r['reward'] for r in grown]))}")
    for step_key, step in improve:
        lines.append(f"   {step_key}: threshold {step['threshold']:.4g} kept {step['kept']} (grown {step.get('kept_grown')}) "
                     f"-> {', '.join(f'{k}={v:.4f}' for k, v in step.items() if k.startswith('dev_'))}")
    ordered = sorted(grown or rows, key=lambda r: r["reward"])
    best, worst = (ordered[-shown:][::-1], ordered[:shown]) if higher_is_better else (ordered[:shown], ordered[-shown:][::-1])
    lines.append(f"   best samples ({better} reward):")
    lines += [f"     {r['reward']:.4g}  {_text(r)}" for r in best]
    lines.append("   worst samples:")
    lines += [f"     {r['reward']:.4g}  {_text(r)}" for r in worst]
    return lines


def _rest_config(run_dir: Path) -> dict:
    return json.loads((run_dir / "config.json").read_text()).get("rest", {})


def _higher_is_better(run_dir: Path, record: dict) -> bool:
    """The Grow step's reward direction as the reward object gave it; from the config for runs before
    the Grow record held it (only a raw NLL is lower-is-better among the named rewards)."""
    if "higher_is_better" in record:
        return bool(record["higher_is_better"])
    rest = _rest_config(run_dir)
    return not (rest.get("reward") == "nll" and not rest.get("normalise_reward", False))


def _reward_name(run_dir: Path, record: dict) -> str:
    return str(record.get("reward") or _rest_config(run_dir).get("reward", "?"))


def inspect_run(run_dir: str | Path, shown: int = 3) -> str:
    """The inspection report of a run directory, as text."""
    run_dir = Path(run_dir)
    state_file = run_dir / "state.json"
    if not state_file.exists():
        raise RunDirError(f"{run_dir}: not a run directory (state.json is missing)")
    stages = json.loads(state_file.read_text())["stages"]
    lines = []
    for key, record in stages.items():
        if layout.is_grow_stage(key):
            improve = [(k, r) for k, r in stages.items() if layout.grow_stage_of(k) == key]
            lines += describe_grow_step(run_dir, key, record, improve, shown)
    return "\n".join(lines) if lines else f"{run_dir}: no Grow step has finished yet"
