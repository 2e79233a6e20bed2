"""A user's own prompts task for the `restlm compare` tests: prompts with an extra column, their reward module,
a task config and a tiny Llama, written into a folder; and compare.json without what differs between runs."""
from __future__ import annotations

import json
from pathlib import Path

from tiny_models import save_tiny

REWARDS = '''
def length_match(examples, outputs):
    """1 when the output has as many words as the row's `words` column asks, less 0.25 per word off."""
    return [max(0.0, 1 - 0.25 * abs(len(o.split()) - int(e.meta["words"]))) for e, o in zip(examples, outputs)]


def short(examples, outputs):
    return [1.0 / (1 + len(o.split())) for o in outputs]
'''
PROMPTS = [("the cat", 2), ("a dog", 3), ("the bird", 1), ("a fish", 2), ("the mat", 3), ("a tree", 1),
           ("the sun", 2), ("a cup", 1)]
TASK = """task: prompts
model: {name: model, max_length: 32}
prompts: {train: train.jsonl, dev: dev.jsonl, test: test.jsonl, prompt_column: question, extra_columns: [words],
          max_new_tokens: 5, gold: "compare_rewards:short"}
rest: {reward: "compare_rewards:length_match", original_data: none, grow_steps: 1, improve_steps: 2, grow_sizes: [6],
       samples_per_input: 4, sampling: sample, guard_samples: 2, improve_learning_rate: 0.01}
train: {batch_size: 4, eval_batch_size: 8, learning_rate: 0.01}
ppo: {learning_rate: 0.001, total_steps: 3, batch_size: 2, mini_batch_size: 2, ppo_epochs: 1, max_new_tokens: 5,
      eval_every: 1}
grpo: {learning_rate: 0.001, total_steps: 2, batch_size: 2, samples_per_prompt: 2, mini_batch_size: 4,
       max_new_tokens: 5, eval_every: 1}
dpo: {learning_rate: 0.001, batch_size: 2, max_length: 256}
baselines: {zero_shot: {backend: none}}
run: {histograms: false, tensorboard: false}
"""
METHODS = "sft,rest,rest_em,ppo,grpo,dpo"


def write_user_folder(folder: Path) -> Path:
    """The user's folder: train/dev/test prompts, compare_rewards.py, task.yaml and a tiny Llama in `model`."""
    for split, rows in (("train", PROMPTS), ("dev", PROMPTS[:3]), ("test", PROMPTS[3:])):
        (folder / f"{split}.jsonl").write_text("".join(json.dumps({"question": f"write about {t}", "words": w}) + "\n"
                                                       for t, w in rows))
    (folder / "compare_rewards.py").write_text(REWARDS)
    (folder / "task.yaml").write_text(TASK)
    save_tiny(folder / "model")
    return folder


def without_times(value):
    """compare.json without what differs between identical runs: clock times, memory, the command."""
    if isinstance(value, dict):
        return {k: without_times(v) for k, v in value.items()
                if not (k.endswith("_s") or k in ("peak_memory_mb", "command", "carried_from", "eval_s"))}
    if isinstance(value, list):
        return [without_times(v) for v in value]
    return value
