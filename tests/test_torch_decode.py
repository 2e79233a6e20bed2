"""The `torch` engine (restlm.generation.torch_decode): greedy tokens equal Hugging Face generate's (float32,
causal and seq2seq, several batches, rows that end early), the shared prefill, draws that follow
softmax(logits / T) inside the top_p nucleus, seeds, and the token-sized batches."""
from __future__ import annotations

import sys

import pytest
import torch
from accelerate import Accelerator

from restlm.config import GenerationConfig
from restlm.data.examples import Example
from restlm.generation import Sampling
from restlm.generation.torch_decode import decode_causal, next_tokens, token_batches
from restlm.policies.causal import CausalLMPolicy
from tiny_models import SEQ2SEQ_SOURCES, tiny_llama, tiny_seq2seq_policy, tiny_tokenizer

PROMPTS = [Example("the cat sat on the mat"), Example("Answer: Yes"), Example("the dog ran in the park today"),
           Example("No"), Example("a bird")]
TORCH = GenerationConfig(engine="torch", batch_tokens=64)  # small: several batches of these prompts


def causal(seed: int = 0) -> CausalLMPolicy:
    tok = tiny_tokenizer()
    return CausalLMPolicy(tiny_llama(len(tok), seed), tok, Accelerator(), max_new_tokens=8, batch_size=2)


@pytest.mark.parametrize("kind", ["causal", "seq2seq"])
def test_greedy_equals_hf_generate_greedy_over_several_batches(kind):
    policy = causal() if kind == "causal" else tiny_seq2seq_policy()
    examples = PROMPTS if kind == "causal" else [Example(s) for s in SEQ2SEQ_SOURCES]
    greedy = Sampling(n=1, greedy=True, max_new_tokens=8)
    hf = policy.generate_ids(examples, greedy, seed=0)
    policy.use_engine(TORCH)
    assert policy.engine.name == "torch"
    assert policy.generate_ids(examples, greedy, seed=0) == hf
    assert policy.sample(examples, greedy=True) == [[policy.tokenizer.decode(ids[0], skip_special_tokens=True).strip()]
                                                   for ids in hf]


def test_rows_that_end_early_leave_the_batch_and_the_others_go_on_as_generate_does():
    """An 'EOS' that some rows draw early (a token the tiny model often emits): each row stops at its own
    first EOS, and the rows left behind decode exactly as generate decodes them."""
    policy = causal()
    model, pad = policy.unwrapped, policy.tokenizer.pad_token_id
    prompts = [policy.prompt_ids(e) for e in PROMPTS]
    free, none = decode_causal(model, prompts, Sampling(n=1, greedy=True, max_new_tokens=10), [10**6], pad,
                               torch.Generator())
    assert none is None  # no log-probs unless asked for
    firsts = [row[0][2] for row in free]  # the third token of each row, as an end token for some rows
    eos = [max(set(firsts), key=firsts.count)]
    ours, _ = decode_causal(model, prompts, Sampling(n=1, greedy=True, max_new_tokens=10), eos, pad, torch.Generator())
    lengths = [len(row[0]) for row in ours]
    assert min(lengths) <= 3 < max(lengths)  # some rows ended early while others went on
    for prompt, row in zip(prompts, ours):
        out = model.generate(input_ids=torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                             max_new_tokens=10, do_sample=False, eos_token_id=eos, pad_token_id=pad)
        assert row[0] == out[0, len(prompt):].tolist()[: len(row[0])]
        assert (eos[0] in row[0]) == (row[0][-1] == eos[0])


def test_samples_share_the_prefill_and_each_starts_from_it():
    """At a temperature near 0 every one of a prompt's K samples is its greedy output: the repeated cache
    holds each prompt's own keys and values, in the right rows."""
    policy = causal()
    policy.use_engine(TORCH)
    greedy = policy.generate_ids(PROMPTS, Sampling(n=1, greedy=True, max_new_tokens=6), seed=0)
    cold = policy.generate_ids(PROMPTS, Sampling(n=3, greedy=False, temperature=1e-4, max_new_tokens=6), seed=0)
    assert cold == [[g[0]] * 3 for g in greedy]


def test_draws_follow_the_tempered_softmax_inside_the_nucleus():
    torch.manual_seed(0)
    logits = torch.randn(1, 50) * 2
    generator = torch.Generator().manual_seed(1)
    for temperature, top_p in ((1.0, 1.0), (0.7, 1.0), (1.0, 0.6)):
        sampling = Sampling(n=1, greedy=False, temperature=temperature, top_p=top_p)
        draws = torch.cat([next_tokens(logits.expand(4000, -1), sampling, generator) for _ in range(5)])
        expected = torch.softmax(logits[0] / temperature, -1)
        if top_p < 1.0:  # by hand: the smallest set of most likely tokens whose mass reaches top_p
            order = expected.argsort(descending=True)
            kept = order[: int((expected[order].cumsum(0) < top_p).sum()) + 1]
            nucleus = torch.zeros_like(expected)
            nucleus[kept] = expected[kept]
            expected = nucleus / nucleus.sum()
            assert set(draws.unique().tolist()) <= set(kept.tolist())
        seen = torch.bincount(draws, minlength=50).float() / len(draws)
        assert 0.5 * (seen - expected).abs().sum() < 0.03  # total variation, 20000 draws
    assert next_tokens(logits, Sampling(n=1, greedy=True), generator).item() == logits.argmax().item()


def test_the_same_seed_gives_the_same_samples_and_another_seed_others():
    policy = causal()
    policy.use_engine(TORCH)
    first = policy.sample(PROMPTS, k=4, temperature=1.0, seed=3)
    assert policy.sample(PROMPTS, k=4, temperature=1.0, seed=3) == first
    assert policy.sample(PROMPTS, k=4, temperature=1.0, seed=4) != first
    assert [len(s) for s in first] == [4] * len(PROMPTS)


def test_batches_hold_at_most_batch_tokens_prompt_tokens_times_samples():
    lengths = [3, 5, 5, 8, 20, 2]
    order = sorted(range(6), key=lambda i: lengths[i])  # 5, 0, 1, 2, 3, 4
    assert token_batches(order, lengths, 1, 16) == [[5, 0, 1], [2, 3], [4]]  # 3 rows x 5 = 15; 2 x 8 = 16
    assert token_batches(order, lengths, 2, 16) == [[5, 0], [1], [2], [3], [4]]
    assert token_batches(order, lengths, 1, 1000) == [order]


def test_a_bf16_copy_reports_its_own_log_probs_of_the_samples_for_the_gap_guard():
    """The engine's mean log-prob of each sample equals the float32 policy's within bf16 rounding; the policy's
    own model (float32) reports none: there is no gap to guard."""
    policy = causal()
    policy.use_engine(TORCH)
    samples = policy.rollouts(PROMPTS, k=2, temperature=1.0, top_p=1.0, max_new_tokens=6, seed=0)
    assert samples.engine_mean_log_probs is None
    policy.use_engine(GenerationConfig(engine="torch", dtype="bfloat16"))
    samples = policy.rollouts(PROMPTS, k=2, temperature=1.0, top_p=1.0, max_new_tokens=6, seed=0)
    engine = torch.tensor(samples.engine_mean_log_probs)
    batch = policy.rollout_batch(samples)
    with torch.no_grad():
        logits, labels = policy.rollout_logits(policy.unwrapped, batch)
    mask = labels != -100
    token_lp = torch.log_softmax(logits.float(), -1).gather(-1, labels.clamp(min=0)[..., None]).squeeze(-1)
    policy_mean = (token_lp * mask).sum(-1) / mask.sum(-1)
    assert engine.shape == policy_mean.shape and (engine < 0).all()
    assert torch.allclose(engine, policy_mean, atol=0.05)


def test_auto_picks_torch_in_bf16_for_a_causal_policy_where_bf16_is_native(monkeypatch):
    from transformers import LlamaConfig, LlamaForCausalLM

    import restlm.precision as precision

    tok = tiny_tokenizer()
    config = LlamaConfig(vocab_size=len(tok), hidden_size=1024, intermediate_size=4096, num_hidden_layers=2,
                         num_attention_heads=8, num_key_value_heads=2, max_position_embeddings=64)
    policy = CausalLMPolicy(LlamaForCausalLM(config).eval(), tok, Accelerator(), max_new_tokens=4)  # 30M parameters
    monkeypatch.setattr(precision, "bf16_pays", lambda device="cpu": True)
    policy.use_engine(GenerationConfig(engine="auto"))
    assert policy.engine.describe() == "torch/bfloat16"
    monkeypatch.setattr(precision, "bf16_pays", lambda device="cpu": False)
    monkeypatch.setitem(sys.modules, "ctranslate2", None)  # import ctranslate2 now raises ImportError
    policy.use_engine(GenerationConfig(engine="auto"))
    assert policy.engine.describe() == "hf/float32"  # no native bf16 and no ctranslate2


def test_the_last_position_logits_come_from_a_contiguous_copy_not_a_copy_of_the_head_per_row():
    """`last_position` (an index for `logits_to_keep`): the logits the int 1 gives, without the batched matmul
    torch runs for a strided [rows, 1, hidden] slice of a frozen model, which copies the head once per row (a
    10.6 GB peak for a SmolLM2 prefill of 160 rows here)."""
    from torch.profiler import ProfilerActivity, profile

    from restlm.policies.causal import last_position

    model = tiny_llama(300).eval().requires_grad_(False)  # frozen, as the engines' bf16 copy is
    ids = torch.randint(5, 300, (6, 9))
    with torch.no_grad():
        by_int = model(input_ids=ids, logits_to_keep=1).logits
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            by_index = model(input_ids=ids, logits_to_keep=last_position(ids.device)).logits
    torch.testing.assert_close(by_index, by_int, rtol=0, atol=1e-6)  # another matmul path: rounding only
    assert by_index.shape == (6, 1, 300)
    assert "aten::bmm" not in {event.key for event in prof.key_averages()}
