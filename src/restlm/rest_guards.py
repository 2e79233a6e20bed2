"""ReST's guards against over-optimisation, a hook the algorithm calls at three points: the Grow
step records the Grow policy's log-probs of a few samples, an Improve step asks what the guards
measure now (drift toward those samples, token entropy, KL to a frozen Grow policy on fresh
samples), and the loop asks for the frozen Grow policy when a step will run.
"""
from __future__ import annotations

import numpy as np

from restlm.config import RestConfig
from restlm.guards import kl_to_reference, mean_token_entropy
from restlm.policies.base import Policy
from restlm.runs import StageRunner

GENERATIVE = ("causal", "seq2seq")  # policy kinds with token-level guards (entropy, KL to the Grow policy)


class GrowGuards:
    """The guards of one ReST run: its config's `guard_samples`, the policy, its stage runner."""

    def __init__(self, config: RestConfig, policy: Policy, stages: StageRunner):
        self.config, self.policy, self.stages = config, policy, stages

    def grown_log_probs(self, examples, outputs, sources, refs) -> list[float | None]:
        """log p(y|x) under the Grow policy for the first `guard_samples` grown rows (None elsewhere).

        `refs` already holds these log-probs for every row when the loss needed them (BVMPO).
        """
        chosen = [j for j, source in enumerate(sources) if source == "grown"][: self.config.guard_samples]
        values: list[float | None] = [None] * len(sources)
        if not chosen:
            return values
        scores = ([refs[j] for j in chosen] if refs[chosen[0]] is not None
                  else self.policy.log_probs([examples[j] for j in chosen], [outputs[j] for j in chosen]))
        for j, value in zip(chosen, scores):
            values[j] = float(value)
        return values

    def after_improve(self, grown, grow_policy: Policy | None, seed: int) -> dict:
        """After an Improve step, on the guard's grown samples: the mean rise of their log-prob since
        the Grow step (drift toward the samples) and the policy's token entropy on them; and, given
        the Grow policy, the KL to it on fresh samples."""
        chosen = [j for j, value in enumerate(grown.guard_log_probs) if value is not None]
        if not chosen:
            return {}
        examples, outputs = [grown.examples[j] for j in chosen], [grown.outputs[j] for j in chosen]
        now = self.policy.log_probs(examples, outputs)
        # not a KL: the Improve steps train on these very samples, so this measures how far they
        # pulled the policy toward its own samples; kl_to_grow_policy below samples afresh
        metrics = {"grow_log_prob_gain": float(np.mean(now - [grown.guard_log_probs[j] for j in chosen]))}
        if getattr(self.policy, "kind", None) in GENERATIVE:
            metrics["token_entropy"] = mean_token_entropy(self.policy, examples, outputs)
        if grow_policy is not None:
            metrics["kl_to_grow_policy"] = self._kl_to_grow_policy(grown, grow_policy, seed)
        return metrics

    def _kl_to_grow_policy(self, grown, grow_policy: Policy, seed: int) -> float:
        """KL(current policy || Grow policy), estimated on one fresh sample of the current policy
        (temperature 1, full nucleus) for each of the first `guard_samples` distinct Grow inputs."""
        first_row = {}
        for j, (source, group) in enumerate(zip(grown.sources, grown.groups)):
            if source == "grown":
                first_row.setdefault(group, j)
        examples = [grown.examples[j] for j in list(first_row.values())[: self.config.guard_samples]]
        samples = self.policy.sample(examples, k=1, temperature=1.0, greedy=False, seed=seed, top_p=1.0)
        return kl_to_reference(self.policy, grow_policy, examples, [outputs[0] for outputs in samples])

    def kl_enabled(self) -> bool:
        """True when the guard estimates KL to the Grow policy (generative policies, guard_samples > 0)."""
        return self.config.guard_samples > 0 and getattr(self.policy, "kind", None) in GENERATIVE

    def frozen_grow_policy(self, grow_from: str) -> Policy | None:
        """A frozen copy of the policy as it was at stage `grow_from` (the Grow policy), or None without
        the KL guard or when its weights are gone (a resumed run whose checkpoint was pruned)."""
        if not self.kl_enabled():
            return None
        if self.stages.in_memory == grow_from:
            return self.policy.frozen_copy()
        checkpoint = self.stages.run.checkpoint_dir(grow_from)
        return self.policy.frozen_copy(checkpoint) if checkpoint.exists() else None
