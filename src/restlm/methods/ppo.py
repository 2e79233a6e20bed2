"""PPO as a method: restlm.ppo on the task's training prompts and proxy (the `ppo` section's
settings), until `ppo.total_steps` or the sampled-token budget; evaluated every `ppo.eval_every`
steps, it ends at its evaluated step of highest dev selection metric (the start included)."""
from __future__ import annotations

import dataclasses
import time

from restlm import run_layout as layout
from restlm.methods.base import Method, MethodRun, register_method
from restlm.methods.sft import metrics_only


@register_method("ppo")
class PPOMethod(Method):
    kinds = ("causal",)
    sections = ("ppo", "rest.reward", "rest.normalise_reward")
    summary = "PPO: on-policy samples, a value head, a KL penalty to the start policy"

    def run(self, run: MethodRun) -> dict:
        from restlm.ppo import PPO

        metric = run.task.selection_metric
        cfg = dataclasses.replace(run.config.ppo, seed=run.seed, keep_best=metric,
                                  max_sampled_tokens=run.budget or run.config.ppo.max_sampled_tokens)
        reward = run.proxy()

        def train(key: str) -> dict:
            ppo = PPO(run.policy, reward, run.task.train, cfg)
            started = time.perf_counter()
            history = ppo.train(run.stages.run.file(*layout.stage_file(key, "_metrics.jsonl").parts), verbose=False,
                                evaluate=run.evaluate)
            steps = [{**metrics_only(e), "step": "start" if e["step"] == 0 else f"step {e['step']}"}
                     for e in ppo.evaluations]
            steps[0] = {"step": "start", "sampled_tokens": 0, **metrics_only(run.start_metrics)}
            eval_s = sum(e.get("eval_s", 0.0) for e in ppo.evaluations)
            best = next(i for i, e in enumerate(ppo.evaluations) if e["step"] == ppo.best_step)
            return {"steps": steps, "chosen_step": steps[best]["step"], "sampled_tokens": ppo.sampled_tokens,
                    "wall_time_s": time.perf_counter() - started - eval_s, "ppo_steps": len(history),
                    "last_kl": history[-1]["ppo/kl"], "settings": dataclasses.asdict(cfg)}

        record = run.stages(run.prefix, train, after=run.start, trains=True)
        run.hold(record["checkpoint"])  # a resumed run replays the record: the weights come from its checkpoint
        return record
