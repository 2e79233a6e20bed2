"""SFT: the start policy every other method starts from, fine-tuned on the task's references
(the `train` section's settings); a task without references starts from the pretrained model."""
from __future__ import annotations

import time

from restlm.methods.base import Method, MethodRun, register_method
from restlm.policies.base import Policy
from restlm.training import train_policy


def fine_tune(task, config, policy: Policy, seed: int, key: str) -> dict:
    """Supervised fine-tuning on the task's gold outputs (G0I0), evaluated; the record of stage `key`."""
    from restlm.rest import stage_seed

    items = task.sft_items()
    if not items:  # no gold outputs (prompts without references): the pretrained policy is the start
        start = time.perf_counter()
        metrics = task.evaluate(policy)
        return {**metrics, "sft": "none (no references)", "wall_time_s": 0.0, "eval_s": time.perf_counter() - start}
    train = config.train
    stats = train_policy(policy, items, train, train.learning_rate, train.epochs, stage_seed(seed, key), description=key)
    return {"train_loss": stats.mean_loss, "train_examples_per_s": stats.examples_per_s, "train_dtype": stats.dtype,
            **task.evaluate(policy),
            "wall_time_s": stats.wall_time_s, "sft_examples": len(items)}


@register_method("sft")
class SFT(Method):
    sections = ("train",)
    summary = "the start policy: fine-tuned on the task's references (none: the pretrained model)"

    def run(self, run: MethodRun) -> dict:
        start = run.start_metrics
        about = {k: start[k] for k in ("train_loss", "sft_examples", "sft") if k in start}
        return {"steps": [{"step": "start", "sampled_tokens": 0, **metrics_only(start)}], "chosen_step": "start",
                "sampled_tokens": 0, "wall_time_s": start["wall_time_s"], **about}


def metrics_only(record: dict) -> dict:
    """The numbers of a stage record, without its bookkeeping (checkpoint, memory)."""
    return {k: v for k, v in record.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in ("peak_memory_mb",)}
