"""DPO as a method: the start policy samples `rest.samples_per_input` outputs per training prompt
(at `rest.temperature`, as a Grow step would); the best against the worst under the proxy makes a
pair (ties make none); TRL's DPO (the `dpo` section) then trains on the pairs, once."""
from __future__ import annotations

import dataclasses
import time

import numpy as np

from restlm.errors import ConfigError
from restlm.methods.base import Method, MethodRun, register_method
from restlm.methods.sft import metrics_only


@register_method("dpo")
class DPOMethod(Method):
    kinds = ("causal",)
    sections = ("dpo", "rest.samples_per_input", "rest.temperature", "rest.top_p", "rest.reward",
                "rest.normalise_reward")
    summary = "DPO on best-against-worst pairs of the start policy's samples under the proxy"

    def check(self, config, policy) -> None:
        super().check(config, policy)
        if config.rest.samples_per_input < 2:
            raise ConfigError("rest.samples_per_input", "dpo builds pairs from the samples of each prompt: "
                              f"needs 2 or more, not {config.rest.samples_per_input}")

    def run(self, run: MethodRun) -> dict:
        from restlm.dpo import dpo
        from restlm.rest import stage_seed

        rest, reward = run.config.rest, run.proxy()

        def train(key: str) -> dict:
            started = time.perf_counter()
            prompts = run.task.train
            samples = run.policy.sample(prompts, k=rest.samples_per_input, temperature=rest.temperature,
                                        top_p=rest.top_p, seed=stage_seed(run.seed, key))
            tokens = run.policy.last_generated_tokens
            pairs = preference_pairs(prompts, samples, reward, run.policy)
            steps = [{"step": "start", "sampled_tokens": 0, **metrics_only(run.start_metrics)}]
            if not pairs:  # every prompt's samples tie: nothing to prefer, the start policy is the result
                return {"steps": steps, "chosen_step": "start", "sampled_tokens": tokens, "pairs": 0,
                        "wall_time_s": time.perf_counter() - started,
                        "note": "no training prompt had samples of different rewards: no pairs, no training"}
            stats = dpo(run.policy, pairs, dataclasses.replace(run.config.dpo, seed=run.seed))
            wall = time.perf_counter() - started
            metrics = run.evaluate(run.policy)
            steps.append({"step": "dpo", "sampled_tokens": tokens, **metrics_only(metrics)})
            best = 0 if run.start_metrics[run.task.selection_metric] >= metrics[run.task.selection_metric] else 1
            if best == 0:
                run.policy.load_weights(run.stages.run.saved_weights(run.start))
            return {"steps": steps, "chosen_step": steps[best]["step"], "sampled_tokens": tokens,
                    "wall_time_s": wall, "pairs": len(pairs), "dpo_steps": stats.steps,
                    "first_loss": (stats.losses or [None])[0], "last_loss": (stats.losses or [None])[-1]}

        record = run.stages(run.prefix, train, after=run.start, trains=True)
        run.hold(record["checkpoint"])  # a resumed run replays the record: the weights come from its checkpoint
        return record


def preference_pairs(prompts, samples, reward, policy) -> list:
    """One PreferencePair per prompt whose samples differ in reward: its best against its worst."""
    from restlm.data.preferences import PreferencePair

    flat_examples = [e for e, outputs in zip(prompts, samples) for _ in outputs]
    scores = np.asarray(reward(policy, flat_examples, [o for outputs in samples for o in outputs]), dtype=float)
    pairs, start = [], 0
    for example, outputs in zip(prompts, samples):
        part, start = scores[start : start + len(outputs)], start + len(outputs)
        best, worst = int(part.argmax()), int(part.argmin())
        if part[best] > part[worst]:  # a tie says nothing about preference
            pairs.append(PreferencePair(example.text, outputs[best], outputs[worst], example.uid or ""))
    return pairs
