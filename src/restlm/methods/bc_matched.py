"""BC, matched: the control that tells ReST's grown samples from "training longer". From the same start, it
fine-tunes on the task's references only, for exactly as many optimiser steps as each of ReST's Improve steps
took on the same seed, at the same learning rates and KL anchor; each matched step is evaluated and the best
on dev is chosen, as ReST's are. So ReST - bc_matched is what the grown samples add at equal optimisation."""
from __future__ import annotations

from restlm import run_layout as layout
from restlm.errors import RunDirError
from restlm.methods.base import Method, MethodRun, chosen, register_method
from restlm.methods.sft import metrics_only


@register_method("bc_matched")
class BCMatched(Method):
    sections = ("rest", "train")
    needs = ("rest",)
    needs_references = True
    summary = "BC on the references for as many optimiser steps (same learning rates) as ReST's Improve steps"

    def run(self, run: MethodRun) -> dict:
        from restlm.report.cells import step_label  # here: the report package loads matplotlib
        from restlm.rest import stage_seed
        from restlm.training import train_policy

        folder = run.stages.run
        rest = folder.stage(layout.method_final(run.seed, "rest"))  # compare runs rest first (`needs`)
        if rest is None:
            raise RunDirError(f"{folder.path}: bc_matched needs seed {run.seed}'s rest record, and it has none")
        improve = [_with_steps(folder, run.seed, step, run.config) for step in rest.get("improve") or []]
        items = run.task.sft_items()
        cfg, metric = run.config.rest, run.task.selection_metric
        reference = None  # the start, frozen: the KL anchor of every Improve step when rest.improve_kl_coef is set
        steps = [{"step": "start", "sampled_tokens": 0, **metrics_only(run.start_metrics)}]
        keys, previous, wall, best = [run.start], run.start, 0.0, 0
        for step in improve:
            key = layout.improve_stage(run.prefix, step["G"], step["I"])
            # as ReST's: with restart_from 'start', each Grow step's first Improve step trains the start again
            after = run.start if step["I"] == 1 and cfg.restart_from == "start" else previous
            if cfg.improve_kl_coef and reference is None and folder.stage(key) is None:
                checkpoint = folder.checkpoint_dir(run.start)
                if not checkpoint.exists():
                    raise RunDirError(f"{folder.path}: bc_matched's KL anchor is the start, and {checkpoint} is gone")
                reference = run.policy.frozen_copy(checkpoint)

            def train(key, step=step):
                stats = train_policy(run.policy, items, run.config.train, step["lr"], 1, stage_seed(run.seed, key),
                                     description=key, reference=reference, kl_coef=cfg.improve_kl_coef,
                                     max_steps=step["train_steps"])
                return {"lr": step["lr"], "train_steps": stats.steps, "train_loss": stats.mean_loss,
                        "train_examples_per_s": stats.examples_per_s, "train_dtype": stats.dtype,
                        **run.evaluate(run.policy), "wall_time_s": stats.wall_time_s}

            record = run.stages(key, train, after=after, trains=True)
            wall += record["wall_time_s"]
            keys.append(previous := key)
            steps.append({"step": step_label((step["G"], step["I"])), "sampled_tokens": 0, **metrics_only(record)})
            best = chosen(steps, metric)
            if run.stages.ran:  # only after a step that ran: a replay on resume must not prune later steps
                run.stages.prune(run.prefix, keep={keys[best], key, run.start})
        run.hold(keys[best])
        run.stages.prune(run.prefix, keep={keys[best]})
        return {"steps": steps, "chosen_step": steps[best]["step"], "sampled_tokens": 0, "wall_time_s": wall,
                "train_steps": sum(step["train_steps"] for step in improve)}


def _with_steps(folder, seed: int, step: dict, config) -> dict:
    """One of ReST's Improve steps with its learning rate and optimiser steps. A record written before they were
    kept (session 16) gets them from the step's own stage record: its lr, and improve_epochs passes over its kept
    rows in batches of train.batch_size, which is how train_policy cuts them (`steps_per_epoch`)."""
    from restlm.training import steps_per_epoch

    if step.get("train_steps") is not None and step.get("lr") is not None:
        return step
    stage = folder.stage(layout.improve_stage(layout.method_prefix(seed, "rest"), step["G"], step["I"]))
    if stage is None or stage.get("lr") is None or stage.get("kept") is None:
        raise RunDirError(f"{folder.path}: seed {seed}'s rest record has no optimiser step counts, nor a stage "
                          f"record of G{step['G']}I{step['I']} to count them from; run rest again (a new --out)")
    steps = stage.get("train_steps") or config.rest.improve_epochs * steps_per_epoch(stage["kept"],
                                                                                      config.train.batch_size)
    return {**step, "lr": stage["lr"], "train_steps": steps}

