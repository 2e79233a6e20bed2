"""ReST (Gulcehre et al. 2023) as a method: Grow steps from the start policy, each followed by
Improve steps at rising thresholds (the `rest` section's settings), one trajectory of
`rest.grow_sizes[0]` inputs per Grow step; it ends at its step of highest dev selection metric."""
from __future__ import annotations

import dataclasses

from restlm import run_layout as layout
from restlm.config import RestConfig
from restlm.errors import ConfigError
from restlm.methods.base import Method, MethodRun, chosen, register_method
from restlm.methods.sft import metrics_only


IMPROVE_KEYS = ("G", "I", "threshold", "kept", "kept_grown", "lr", "train_steps", "train_loss")
"""what a method record keeps of each Improve step (bc_matched reads lr and train_steps)"""


@register_method("rest")
class ReSTMethod(Method):
    sections = ("rest", "train")
    summary = "ReST: Grow (sample K outputs per input, score them), then Improve steps at rising thresholds"

    def settings(self, config) -> RestConfig:
        return config.rest

    def check(self, config, policy) -> None:
        super().check(config, policy)
        if len(config.rest.grow_sizes) != 1:
            raise ConfigError("rest.grow_sizes", f"a method runs one trajectory: give one grow size, not "
                              f"{config.rest.grow_sizes}")

    def run(self, run: MethodRun) -> dict:
        from restlm.report.cells import step_label  # here: the report package loads matplotlib
        from restlm.rest import ReST

        cfg, metric = self.settings(run.config), run.task.selection_metric
        rest = ReST(run.policy, run.reward(), run.task.train, run.evaluate, cfg, run.config.train,
                    run.stages, selection_metric=metric, keep_checkpoints="best")
        records = rest.fit(cfg.grow_sizes[0], run.seed, prefix=run.prefix, start=run.start,
                           start_score=run.start_metrics[metric])
        grows = [run.stages.run.stage(layout.grow_stage(run.prefix, g)) for g in range(1, cfg.grow_steps + 1)]
        grows = [g for g in grows if g is not None]  # early stopping may end before the last Grow step
        tokens, spent = [], 0
        for grow in grows:
            spent += grow.get("sampled_tokens") or 0
            tokens.append(spent)
        steps = [{"step": "start", "sampled_tokens": 0, **metrics_only(run.start_metrics)}]
        steps += [{"step": step_label((r["G"], r["I"])), "sampled_tokens": tokens[r["G"] - 1], **metrics_only(r)}
                  for r in records]
        best = chosen(steps, metric)
        key = run.start if best == 0 else records[best - 1]["checkpoint"]
        run.hold(key)
        wall = sum(g["wall_time_s"] for g in grows) + sum(r["wall_time_s"] - r.get("eval_s", 0.0) for r in records)
        return {"steps": steps, "chosen_step": steps[best]["step"], "sampled_tokens": spent, "wall_time_s": wall,
                "settings": dataclasses.asdict(cfg),
                "improve": [{k: r.get(k) for k in IMPROVE_KEYS} for r in records]}
