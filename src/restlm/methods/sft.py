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
    stopping = EarlyStopping(task, policy, train.patience) if train.patience is not None else None
    stats = train_policy(policy, items, train, train.learning_rate, train.epochs, stage_seed(seed, key), description=key,
                         after_epoch=stopping)
    if stopping:
        stopping.restore_best()
    metrics = task.evaluate(policy)  # with early stopping: the best epoch's, every metric (each epoch scored dev only)
    train_s = stats.wall_time_s - (stopping.eval_s if stopping else 0.0)  # the epochs' evaluations are not training
    return {"train_loss": stats.mean_loss, "train_examples_per_s": stats.examples / max(train_s, 1e-9),
            "train_dtype": stats.dtype, **metrics, "wall_time_s": train_s, "sft_examples": len(items),
            **(stopping.record() if stopping else {})}


class EarlyStopping:
    """`train_policy`'s after_epoch for `train.patience`: score the task's selection metric after each epoch (the
    selection set alone, not the held-out sets), keep the best epoch's weights, stop after `patience` epochs without
    a new best. The record's train_loss is then the mean over every epoch trained, the ones after the best included."""

    def __init__(self, task, policy: Policy, patience: int):
        self.task, self.policy, self.patience = task, policy, patience
        self.scores: list[float] = []
        self.best_epoch, self.best_weights = 0, None
        self.eval_s = 0.0  # spent evaluating, inside the training loop's clock

    def __call__(self, epoch: int) -> bool:
        started = time.perf_counter()
        score = self.task.selection_score(self.policy)
        if not self.scores or score > max(self.scores):
            self.best_epoch, self.best_weights = epoch, self._trainable()
        self.scores.append(score)
        self.eval_s += time.perf_counter() - started
        return epoch - self.best_epoch >= self.patience

    def _trainable(self) -> dict:
        """A CPU copy of what training changes (under LoRA: the adapters, not the frozen base) and the buffers."""
        model = self.policy.unwrapped
        names = {n for n, p in model.named_parameters() if p.requires_grad} | {n for n, _ in model.named_buffers()}
        return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items() if k in names}

    def restore_best(self) -> None:
        """Load the best epoch's weights into the policy."""
        unexpected = self.policy.unwrapped.load_state_dict(self.best_weights, strict=False).unexpected_keys
        assert not unexpected, unexpected  # every copied key is the model's own
        self.best_weights = None  # its memory goes back

    def record(self) -> dict:
        metric = self.task.selection_metric
        return {"epochs_trained": len(self.scores), "best_epoch": self.best_epoch,
                f"{metric}_by_epoch": self.scores, "eval_s": self.eval_s}


@register_method("sft")
class SFT(Method):
    sections = ("train",)
    fixed = ("train",)  # the start is fine-tuned once per seed, from the config's `train`: a variant cannot vary it
    summary = "the start policy: fine-tuned on the task's references (none: the pretrained model)"

    def run(self, run: MethodRun) -> dict:
        start = run.start_metrics
        about = {k: v for k, v in start.items()  # with early stopping, the epochs it trained and their dev scores
                 if k in ("train_loss", "sft_examples", "sft", "epochs_trained", "best_epoch") or k.endswith("_by_epoch")}
        return {"steps": [{"step": "start", "sampled_tokens": 0, **metrics_only(start)}], "chosen_step": "start",
                "sampled_tokens": 0, "wall_time_s": start["wall_time_s"], **about}


def metrics_only(record: dict) -> dict:
    """The numbers of a stage record, without its bookkeeping (checkpoint, memory)."""
    return {k: v for k, v in record.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in ("peak_memory_mb",)}
