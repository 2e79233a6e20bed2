"""A generation engine: what turns a generative policy's prompts into sampled or greedy tokens.

The policy owns prompts, decoding to strings, log-probabilities and training; an engine only
generates token ids, from the policy's current weights. An engine that keeps its own copy of the
weights (CTranslate2, a bf16 copy) refreshes it when the policy's weights changed since its last call
(`weights_version`: the tensors' version counters and sums), so samples always come from the policy as
it is. Rewards and losses never read an engine's numbers: they use the torch policy's own
log-probabilities of the sampled tokens.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from restlm.data.examples import Example


@dataclass(frozen=True)
class Sampling:
    """What to generate for each prompt."""

    n: int  # sequences per prompt (1 when greedy)
    greedy: bool
    temperature: float = 1.0
    top_p: float = 1.0  # the nucleus; no top-k cut, no beams
    max_new_tokens: int = 128


def weights_version(model) -> tuple:
    """A key that changes whenever a parameter or buffer of `model` is written in place or replaced: each
    tensor's identity, its version counter, and its sum. The counters alone miss writes that bypass them:
    TRL's trainers (DPO, SFT) update the weights and move no counter, and a copy kept by the sums' absence
    generated from the start policy after DPO had trained it. The sums cost one read of the weights."""
    import torch

    tensors = [*model.parameters(), *model.buffers()]
    with torch.no_grad():
        sums = torch.stack([t.detach().sum(dtype=torch.float64) for t in tensors]).tolist() if tensors else []
    return tuple((id(t), t._version, total) for t, total in zip(tensors, sums))


class Engine(ABC):
    """Generates for one policy. `generate` returns, per prompt, `n` token-id lists, each the new
    tokens up to and including the first EOS (the whole row without one), no prompt tokens."""

    name: ClassVar[str]
    kinds: ClassVar[tuple[str, ...]] = ("causal", "seq2seq")

    def __init__(self, policy, options):
        self.policy, self.options = policy, options
        self.sync_seconds = 0.0  # time spent bringing the engine's weights in step, all calls together
        self.syncs = 0
        self.last_mean_log_probs: list[list[float]] | None = None
        """per example and sequence of the last `generate`: the engine's own mean log-prob of the generated
        tokens at temperature 1 (None when the engine is the policy's model itself): for the gap guard"""

    @abstractmethod
    def generate(self, examples: list[Example], sampling: Sampling, seed: int, sort_by_length: bool = True,
                 progress: Callable[[int, int], None] | None = None) -> list[list[list[int]]]:
        """Token ids per example (see the class doc); `sort_by_length`: batch prompts of similar length;
        `progress(examples, tokens)` after each batch, with what that batch did."""

    def describe(self) -> str:
        return self.name
