"""The `hf` engine: Hugging Face `generate` on the policy's own model, or on a bf16 copy of it
(`generation.dtype`) kept in step with the policy's weights.

Batches of `policy.batch_size` prompts, sorted by length; each batch seeds torch from (seed, its
index), so the same seed, inputs, batch size, dtype, process count and hardware give the same tokens.
"""
from __future__ import annotations

import copy
import time

import torch

from restlm.data.examples import Example
from restlm.generation.base import Engine, Sampling, weights_version
from restlm.precision import resolve_dtype
from restlm.generation.registry import register_engine


@register_engine("hf")
class HFEngine(Engine):
    def __init__(self, policy, options):
        super().__init__(policy, options)
        own = next(policy.unwrapped.parameters()).dtype
        wanted = resolve_dtype(options.dtype, policy.accelerator.device.type)
        self.dtype = wanted if own == torch.float32 else own  # a policy already in bf16 generates as it is
        self._copy, self._version = None, None

    def describe(self) -> str:
        return f"hf/{str(self.dtype).removeprefix('torch.')}"

    def model(self):
        """The model to generate with: the policy's own, or its copy in self.dtype, refreshed when the weights changed."""
        own = self.policy.unwrapped
        if self.dtype == next(own.parameters()).dtype:
            return own
        version = weights_version(own)
        if version != self._version:
            start = time.perf_counter()
            self._copy = None  # its memory back before the new copy is made
            self._copy = copy.deepcopy(own).to(self.dtype).eval().requires_grad_(False)
            self._version = version
            self.sync_seconds += time.perf_counter() - start
            self.syncs += 1
        return self._copy

    @torch.no_grad()
    def generate(self, examples: list[Example], sampling: Sampling, seed: int, sort_by_length: bool = True,
                 progress=None) -> list[list[list[int]]]:
        policy = self.policy
        policy.unwrapped.eval()
        model = self.model()
        settings = generate_settings(sampling)
        order = list(range(len(examples)))
        if sort_by_length:
            order.sort(key=lambda i: policy.input_length(examples[i]))
        rows: list = [None] * len(examples)
        n = sampling.n
        for batch_index, start in enumerate(range(0, len(order), policy.batch_size)):
            idx = order[start : start + policy.batch_size]
            with torch.random.fork_rng():  # the caller's random stream goes on as if we had not sampled
                torch.manual_seed(seed * 1_000_003 + batch_index)  # seeds s and s+1 share no batch seed
                tokens = policy._generate([examples[i] for i in idx], settings, model)  # (len(idx) * n, new tokens)
            by_prompt = per_prompt(tokens, policy.eos_ids, n)
            for j, i in enumerate(idx):
                rows[i] = by_prompt[j]
            if progress:
                progress(len(idx), sum(len(t) for seqs in by_prompt for t in seqs))
        return rows


def generate_settings(sampling: Sampling) -> dict:
    """`generate` keyword arguments for `sampling`: greedy, or draws from the tempered nucleus without a top-k cut."""
    settings = {"max_new_tokens": sampling.max_new_tokens, "do_sample": not sampling.greedy, "num_beams": 1,
                "num_return_sequences": sampling.n, "use_cache": True}
    if not sampling.greedy:
        settings.update(temperature=sampling.temperature, top_p=sampling.top_p, top_k=0)
    return settings


def per_prompt(tokens: torch.Tensor, eos_ids, n: int) -> list[list[list[int]]]:
    """`generate`'s new tokens (n rows per prompt) as n lists per prompt, each cut after its first EOS."""
    from restlm.policies.generative import count_until_eos

    cut = [row[:c] for row, c in zip(tokens.tolist(), count_until_eos(tokens, eos_ids))]
    return [cut[j * n : (j + 1) * n] for j in range(len(cut) // n)]
