"""What the online RL methods share (PPO, GRPO, RLOO): their loop on the task's training prompts and
proxy reward, until the config's total_steps or the sampled-token budget; evaluated every `eval_every`
steps, each ends at its evaluated step of highest dev selection metric (the start included)."""
from __future__ import annotations

import dataclasses
from typing import ClassVar

from restlm import run_layout as layout
from restlm.errors import ConfigError
from restlm.methods.base import Method, MethodRun
from restlm.methods.sft import metrics_only


class OnlineMethod(Method):
    """A method around an OnlineRL trainer; a subclass names its config section and builds the trainer."""

    online = True
    section: ClassVar[str] = ""
    kl_metric: ClassVar[str] = ""  # the history's KL to the start, recorded as last_kl

    def settings(self, config):
        return getattr(config, self.section)

    def check_budget(self, config, budget: int) -> None:
        """ConfigError for a --budget below one step's samples (each draws at least one token)."""
        settings = self.settings(config)
        step = settings.batch_size * settings.samples_per_prompt
        if budget < step:
            raise ConfigError("--budget", f"{budget} sampled tokens is less than one {self.name} step's "
                              f"{settings.batch_size} x {settings.samples_per_prompt} samples (one token each at least)")

    def trainer(self, policy, reward, prompts, settings):
        """The OnlineRL trainer of this method."""
        raise NotImplementedError

    def run(self, run: MethodRun) -> dict:
        metric, settings = run.task.selection_metric, self.settings(run.config)
        cfg = dataclasses.replace(settings, seed=run.seed, keep_best=metric,
                                  max_sampled_tokens=run.budget or settings.max_sampled_tokens)
        reward = run.proxy()

        def train(key: str) -> dict:
            trainer = self.trainer(run.policy, reward, run.task.train, cfg)
            history = trainer.train(run.stages.run.file(*layout.stage_file(key, "_metrics.jsonl").parts),
                                    verbose=False, evaluate=run.evaluate,
                                    state_path=run.stages.run.file(*layout.online_state(key).parts))
            steps = [{**metrics_only(e), "step": "start" if e["step"] == 0 else f"step {e['step']}"}
                     for e in trainer.evaluations]
            steps[0] = {"step": "start", "sampled_tokens": 0, **metrics_only(run.start_metrics)}
            best = next(i for i, e in enumerate(trainer.evaluations) if e["step"] == trainer.best_step)
            return {"steps": steps, "chosen_step": steps[best]["step"], "sampled_tokens": trainer.sampled_tokens,
                    "wall_time_s": sum(h["charts/step_time_s"] for h in history), f"{self.section}_steps": len(history),
                    "last_kl": history[-1][self.kl_metric], "settings": dataclasses.asdict(cfg)}

        record = run.stages(run.prefix, train, after=run.start, trains=True)
        run.hold(record["checkpoint"])  # a resumed run replays the record: the weights come from its checkpoint
        return record
