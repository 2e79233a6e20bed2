"""The `torch` engine: restlm's own decode loop on the policy's torch model (or its bf16 copy), with less
waste than Hugging Face `generate` for causal policies:

- one prefill per prompt, its KV cache shared by the prompt's K samples (generate prefills each of
  the K copies);
- finished rows leave the batch, a quarter of it at a time (generate keeps decoding them as padding
  until the longest ends);
- batches sized by tokens (`generation.batch_tokens`: prompt tokens x samples), not by a row count.

Sampling draws from softmax(logits / T) inside the top_p nucleus (no top-k cut), greedy takes the
argmax, as the other engines do. Each batch draws from its own torch.Generator seeded from (seed, its
index): the same seed, inputs, batch_tokens, dtype, process count and hardware give the same tokens
(other draws than the `hf` engine's). Seq2seq policies decode through `generate` (their encoder runs
once per source there already), in the same batches sized by their sources' tokens.
"""
from __future__ import annotations

import torch

from restlm.data.examples import Example
from restlm.generation.base import Sampling
from restlm.generation.hf import HFEngine, generate_settings, per_prompt
from restlm.generation.registry import register_engine

# prompt tokens x samples a batch unless generation.batch_tokens says: 64 x 4 SmolLM2 samples drew 300 tokens/s at
# 2048 and 500 at 16384 (bigger batches use the matmuls better)
BATCH_TOKENS = 16384


@register_engine("torch")
class TorchDecodeEngine(HFEngine):
    def describe(self) -> str:
        return f"torch/{str(self.dtype).removeprefix('torch.')}"

    @torch.no_grad()
    def generate(self, examples: list[Example], sampling: Sampling, seed: int, sort_by_length: bool = True,
                 progress=None) -> list[list[list[int]]]:
        policy = self.policy
        policy.unwrapped.eval()
        model = self.model()
        prompts = [policy.prompt_ids(e) for e in examples]  # the encoder's input for a seq2seq policy
        lengths = [len(p) for p in prompts]
        order = sorted(range(len(examples)), key=lambda i: lengths[i]) if sort_by_length else list(range(len(examples)))
        rows: list = [None] * len(examples)
        # the copy's own log-probs only differ from the policy's when it is a bf16 copy: the gap guard reads them
        with_log_probs = policy.kind == "causal" and not sampling.greedy and model is not policy.unwrapped
        scores: list | None = [None] * len(examples) if with_log_probs else None
        batches = token_batches(order, lengths, sampling.n, self.options.batch_tokens or BATCH_TOKENS)
        for batch_index, idx in enumerate(batches):
            generator = torch.Generator(device=policy.accelerator.device)
            generator.manual_seed(seed * 1_000_003 + batch_index)  # seeds s and s+1 share no batch seed
            if policy.kind == "causal":
                out, mean_log_probs = decode_causal(model, [prompts[i] for i in idx], sampling, policy.eos_ids,
                                                    policy.tokenizer.pad_token_id, generator, with_log_probs)
            else:
                out, mean_log_probs = self._seq2seq([examples[i] for i in idx], sampling, model, generator), None
            for j, i in enumerate(idx):
                rows[i] = out[j]
                if scores is not None:
                    scores[i] = mean_log_probs[j]
            if progress:
                progress(len(idx), sum(len(t) for seqs in out for t in seqs))
        self.last_mean_log_probs = scores
        return rows

    def _seq2seq(self, examples: list[Example], sampling: Sampling, model, generator) -> list[list[list[int]]]:
        with torch.random.fork_rng(devices=[]):  # generate draws from torch's global stream: seed it from ours
            torch.manual_seed(int(torch.randint(2**62, (1,), generator=generator)))
            tokens = self.policy._generate(examples, generate_settings(sampling), model)
        return per_prompt(tokens, self.policy.eos_ids, sampling.n)


def token_batches(order: list[int], lengths: list[int], n: int, batch_tokens: int) -> list[list[int]]:
    """`order` cut into consecutive batches of at most `batch_tokens` prompt tokens times `n` samples
    (the longest prompt of a batch counts for every row: it is padded to); at least one prompt each."""
    batches, current, longest = [], [], 0
    for i in order:
        wider = max(longest, lengths[i])
        if current and wider * n * (len(current) + 1) > batch_tokens:
            batches.append(current)
            current, wider = [], lengths[i]
        current.append(i)
        longest = wider
    return batches + [current] if current else batches


def decode_causal(model, prompts: list[list[int]], sampling: Sampling, eos_ids: list[int], pad_id: int,
                  generator: torch.Generator, with_log_probs: bool = False
                  ) -> tuple[list[list[list[int]]], list[list[float]] | None]:
    """Per prompt, `sampling.n` token lists (new tokens up to and including the first EOS), and with
    `with_log_probs` the mean log-prob of each list's tokens at temperature 1 under `model` (else None: a
    log-sum-exp over the vocabulary each step that nobody reads). One prefill of the left-padded prompts;
    its KV cache repeated for the n samples; rows leave when they end."""
    from transformers import DynamicCache

    from restlm.policies.causal import last_position  # here: policies import the engines

    device = next(model.parameters()).device
    width = max(len(p) for p in prompts)
    input_ids = torch.tensor([[pad_id] * (width - len(p)) + p for p in prompts], device=device)
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    cache = DynamicCache()
    # the last position's logits only: every prompt position's would be rows x width x 49k floats
    logits = model(input_ids=input_ids, attention_mask=mask, position_ids=positions, past_key_values=cache,
                   use_cache=True, logits_to_keep=last_position(device)).logits[:, -1].float()
    n = sampling.n
    if n > 1:  # the prompt's cache, shared: each of its samples starts from a copy of the prefill's keys and values
        cache.batch_repeat_interleave(n)
        logits, mask = logits.repeat_interleave(n, 0), mask.repeat_interleave(n, 0)
        positions = positions.repeat_interleave(n, 0)
    next_position = positions[:, -1] + 1
    live = torch.arange(len(prompts) * n, device=device)  # the output row of each batch row
    done = torch.zeros(len(live), dtype=torch.bool, device=device)  # rows that drew EOS (still in the batch)
    outputs: list[list[int]] = [[] for _ in range(len(prompts) * n)]
    log_prob_sums = [0.0] * len(outputs)
    eos = torch.tensor(eos_ids, device=device)
    for step in range(sampling.max_new_tokens):
        tokens = next_tokens(logits, sampling, generator)
        log_probs = (logits.gather(-1, tokens[:, None]).squeeze(-1) - logits.logsumexp(-1)).tolist() \
            if with_log_probs else [0.0] * len(live)
        for row, token, ended, log_prob in zip(live.tolist(), tokens.tolist(), done.tolist(), log_probs):
            if not ended:
                outputs[row].append(token)
                log_prob_sums[row] += log_prob
        done = done | torch.isin(tokens, eos)
        if step == sampling.max_new_tokens - 1 or done.all():
            break
        if 4 * int(done.sum()) >= len(live):
            # finished rows leave the batch with their cache rows; only once a quarter has ended, since
            # each removal copies the whole cache
            keep = (~done).nonzero().squeeze(-1)
            cache.batch_select_indices(keep)
            live, tokens, mask, next_position, done = live[keep], tokens[keep], mask[keep], next_position[keep], done[keep]
        mask = torch.cat([mask, mask.new_ones(len(live), 1)], dim=-1)
        logits = model(input_ids=tokens[:, None], attention_mask=mask, position_ids=next_position[:, None],
                       past_key_values=cache, use_cache=True).logits[:, -1].float()
        next_position = next_position + 1
    by_prompt = [outputs[j * n : (j + 1) * n] for j in range(len(prompts))]
    if not with_log_probs:
        return by_prompt, None
    means = [total / len(output) for total, output in zip(log_prob_sums, outputs)]
    return by_prompt, [means[j * n : (j + 1) * n] for j in range(len(prompts))]


def next_tokens(logits: torch.Tensor, sampling: Sampling, generator: torch.Generator) -> torch.Tensor:
    """One token per row: the argmax when greedy, else a draw from softmax(logits / T) in the top_p nucleus
    (the smallest set of most likely tokens whose probability reaches top_p; the most likely always stays)."""
    if sampling.greedy:
        return logits.argmax(-1)
    probs = torch.softmax(logits / sampling.temperature, dim=-1)
    if sampling.top_p >= 1.0:
        return inverse_cdf(probs, generator)
    sorted_probs, sorted_ids = probs.sort(dim=-1, descending=True)
    before = sorted_probs.cumsum(-1) - sorted_probs  # the mass of the more likely tokens
    picked = inverse_cdf(sorted_probs.masked_fill(before >= sampling.top_p, 0.0), generator)
    return sorted_ids.gather(-1, picked[:, None]).squeeze(-1)


def inverse_cdf(weights: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One index per row drawn in proportion to `weights` (not normalised), from one uniform per row: the first
    index whose cumulative weight exceeds it. torch.multinomial draws an exponential per vocabulary entry,
    which cost a quarter of a decode step's time for SmolLM2's 49k tokens."""
    cdf = weights.float().cumsum(-1)  # float32, as multinomial's sums: a zero weight is still never drawn
    u = torch.rand(len(weights), 1, generator=generator, device=weights.device) * cdf[:, -1:]
    return torch.searchsorted(cdf, u, right=True).squeeze(-1).clamp(max=weights.shape[-1] - 1)
