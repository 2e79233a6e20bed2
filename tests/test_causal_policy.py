"""CausalLMPolicy on a tiny random Llama with a byte-level BPE and a chat template: the prompt it
builds, sampling (K strings per input in input order, greedy deterministic, seeded, the sampling
settings reaching `generate`), log_probs against a hand-computed forward pass, labels masked to the
output tokens, the differentiable path equal to log_probs, one train_policy step changing every
parameter, a checkpoint loading in plain transformers; and SmolLM2 translating (marked real)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from accelerate import Accelerator
from transformers import AutoModelForCausalLM

from restlm.config import TrainConfig
from restlm.data.examples import Example
from restlm.policies.base import TrainItem
from restlm.policies.causal import CausalLMPolicy
from restlm.policies.generative import count_until_eos
from restlm.training import train_policy
from helpers import assert_one_train_step_changes_every_parameter
from tiny_models import tiny_llama, tiny_tokenizer

TEMPLATE = "Translate: {text}"
SOURCES = ["the cat sat", "a dog ran in the park and the bird flew", "Yes", "the bird flew over the tree",
           "Answer: No"]
OUTPUTS = ["cat", "the dog x", "", "a bird", "No no"]


def make_policy(chat: bool = True, batch_size: int = 2, seed: int = 0) -> CausalLMPolicy:
    tok = tiny_tokenizer(chat)
    return CausalLMPolicy(tiny_llama(len(tok), seed), tok, Accelerator(), prompt_template=TEMPLATE,
                          max_new_tokens=8, batch_size=batch_size)


@pytest.fixture(scope="module")
def policy() -> CausalLMPolicy:
    return make_policy()


@pytest.fixture(scope="module")
def examples() -> list[Example]:
    return [Example(s, uid=str(i)) for i, s in enumerate(SOURCES)]


def hand_ids(tok, source: str, output: str) -> tuple[list[int], list[int]]:
    """Prompt and output token ids built without the policy: chat template around the template."""
    prompt = tok.apply_chat_template([{"role": "user", "content": TEMPLATE.format(text=source)}], tokenize=False,
                                     add_generation_prompt=True)
    return tok(prompt, add_special_tokens=False)["input_ids"], tok(output, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]


def test_prompt_uses_the_template_and_the_chat_template(policy, examples):
    assert policy.prompt(examples[0]) == "<|im_start|>user\nTranslate: the cat sat<|im_end|>\n<|im_start|>assistant\n"
    plain = make_policy(chat=False)
    assert plain.prompt(examples[0]) == "Translate: the cat sat"
    with pytest.raises(ValueError, match="text"):
        CausalLMPolicy(plain.unwrapped, plain.tokenizer, Accelerator(), prompt_template="no placeholder")


def test_sample_gives_k_strings_per_input_in_order(examples):
    plain = make_policy(chat=False)  # the prompt's last token is the input's: outputs differ by input
    samples = plain.sample(examples, k=3, temperature=1.0, seed=0)
    assert len(samples) == 5 and all(len(s) == 3 and all(isinstance(x, str) for x in s) for s in samples)
    assert 0 < plain.last_generated_tokens <= 5 * 3 * 8
    # batches are sorted by length inside: the results still come back in input order
    greedy = plain.sample(examples, k=3, greedy=True)
    alone = [plain.sample([e], k=1, greedy=True)[0] for e in examples]
    assert greedy == alone and all(len(g) == 1 for g in greedy)
    assert len({g[0] for g in greedy}) > 1  # otherwise the order check above could not fail


def test_greedy_is_deterministic_and_ignores_the_seed(policy, examples):
    first = policy.sample(examples, k=2, greedy=True, seed=0)
    assert policy.sample(examples, k=2, greedy=True, seed=99) == first


def test_sampling_is_reproducible_for_a_seed(policy, examples):
    first = policy.sample(examples, k=3, temperature=2.0, seed=7)
    assert policy.sample(examples, k=3, temperature=2.0, seed=7) == first
    assert policy.sample(examples, k=3, temperature=2.0, seed=8) != first
    # and the caller's random stream is left where it was
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    policy.sample(examples, k=3, temperature=2.0, seed=7)
    assert torch.equal(torch.rand(3), expected)


def test_sampling_settings_reach_generate(policy, examples, monkeypatch):
    calls = []
    generate = policy.unwrapped.generate

    def spy(**kwargs):
        calls.append(kwargs)
        return generate(**kwargs)

    monkeypatch.setattr(policy.unwrapped, "generate", spy)
    policy.sample(examples, k=4, temperature=0.7, top_p=0.9, seed=0, max_new_tokens=3)
    assert len(calls) == 3  # 5 inputs in batches of 2
    for call in calls:
        assert (call["temperature"], call["top_p"], call["top_k"]) == (0.7, 0.9, 0)
        assert (call["do_sample"], call["num_return_sequences"], call["max_new_tokens"]) == (True, 4, 3)
        assert call["use_cache"] and call["num_beams"] == 1
        assert call["attention_mask"][:, -1].all()  # left padding: every prompt ends at the last position
    assert policy.last_generated_tokens <= 5 * 4 * 3
    # a nucleus of one token is greedy decoding
    nucleus = policy.sample(examples, k=2, top_p=1e-9, seed=0)
    assert nucleus == [g * 2 for g in policy.sample(examples, greedy=True)]


def test_count_until_eos():
    tokens = torch.tensor([[5, 2, 7, 2], [5, 6, 7, 8], [2, 2, 2, 2], [5, 9, 6, 6]])
    assert count_until_eos(tokens, [2, 9]) == [2, 4, 1, 2]


def test_log_probs_equal_a_hand_computed_forward(policy, examples):
    got = policy.log_probs(examples, OUTPUTS)
    expected = []
    for example, output in zip(examples, OUTPUTS):
        prompt, out = hand_ids(policy.tokenizer, example.text, output)
        with torch.no_grad():
            logits = policy.unwrapped(torch.tensor([prompt + out])).logits[0]
        log_softmax = torch.log_softmax(logits, -1)
        expected.append(sum(log_softmax[len(prompt) - 1 + j, t].item() for j, t in enumerate(out)))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)


def test_labels_are_masked_to_the_output_tokens(policy, examples):
    batch = policy.collate([TrainItem(examples[0], "cat", 0.5), TrainItem(examples[1], "the dog x")])
    (p0, o0), (p1, o1) = hand_ids(policy.tokenizer, SOURCES[0], "cat"), hand_ids(policy.tokenizer, SOURCES[1], "the dog x")
    width = len(p1) + len(o1)
    assert len(p0) + len(o0) < width and batch["input_ids"].shape == (2, width)
    pad = policy.tokenizer.pad_token_id
    padding = width - len(p0) - len(o0)
    assert batch["input_ids"][0].tolist() == p0 + o0 + [pad] * padding
    assert batch["labels"][0].tolist() == [-100] * len(p0) + o0 + [-100] * padding
    assert batch["attention_mask"][0].tolist() == [1] * (len(p0) + len(o0)) + [0] * padding
    assert batch["labels"][1].tolist() == [-100] * len(p1) + o1
    assert batch["weights"].tolist() == [0.5, 1.0]
    assert policy.token_counts(batch).tolist() == [len(o0), len(o1)]
    cut = make_policy()
    cut.max_output_length = 2
    assert cut.collate([TrainItem(examples[1], "the dog x")])["labels"][0].tolist() == [-100] * len(p1) + o1[:2]


def test_output_log_probs_match_log_probs(policy, examples, monkeypatch):
    batch = policy.collate([TrainItem(e, o) for e, o in zip(examples, OUTPUTS)])
    values, mask = policy.output_token_log_probs(batch)
    # the logits start at the position before the first output token of any row: the prompt before it is skipped
    shortest_prompt = min(len(hand_ids(policy.tokenizer, e.text, o)[0]) for e, o in zip(examples, OUTPUTS))
    assert values.shape == mask.shape == (5, batch["input_ids"].shape[1] - shortest_prompt)
    assert mask[:, 0].any() and mask.sum(-1).tolist() == policy.token_counts(batch).tolist()
    # every position's logits (a causal LM without `logits_to_keep`): the same values at the outputs
    monkeypatch.setattr(policy, "logits_from_first_output", False)
    every, every_mask = policy.output_token_log_probs(batch)
    assert every.shape[1] == batch["input_ids"].shape[1] - 1
    cut = every.shape[1] - values.shape[1]
    assert not every_mask[:, :cut].any() and torch.equal(every_mask[:, cut:], mask)
    torch.testing.assert_close(every[:, cut:], values, rtol=1e-5, atol=1e-5)
    # a causal LM without `logits_to_keep`: every position computed, the same ones read
    monkeypatch.setattr("restlm.policies.causal.keeps_logits", lambda model: False)
    monkeypatch.setattr(policy, "logits_from_first_output", True)
    fallback, fallback_mask = policy.output_token_log_probs(batch)
    assert torch.equal(fallback_mask, mask)
    torch.testing.assert_close(fallback, values, rtol=1e-5, atol=1e-5)
    monkeypatch.undo()
    summed = policy.output_log_probs(batch)
    assert summed.requires_grad
    np.testing.assert_allclose(summed.detach().numpy(), policy.log_probs(examples, OUTPUTS), rtol=1e-5, atol=1e-4)
    # a batch that scores no token (every output cut away) gives empty values, not an error
    empty = {**batch, "labels": torch.full_like(batch["labels"], -100)}
    values, mask = policy.output_token_log_probs(empty)
    assert values.shape == (5, 0) and float(policy.output_log_probs(empty).abs().sum()) == 0.0


def test_the_head_runs_from_the_first_output_under_lora_and_ddp_wrappers_too():
    from peft import LoraConfig, get_peft_model

    from restlm.policies.causal import keeps_logits

    tok = tiny_tokenizer()
    lora = get_peft_model(tiny_llama(len(tok)), LoraConfig(r=2, target_modules=["q_proj"], task_type="CAUSAL_LM"))
    wrapped = torch.nn.Module()
    wrapped.module = lora  # DDP keeps the model as .module
    assert keeps_logits(lora) and keeps_logits(wrapped) and keeps_logits(tiny_llama(len(tok)))
    assert not keeps_logits(torch.nn.Linear(2, 2))


def test_one_train_step_changes_every_parameter_and_raises_the_likelihood(examples):
    assert_one_train_step_changes_every_parameter(make_policy(), examples[:4], OUTPUTS[:4])


def test_checkpoint_loads_in_plain_transformers(examples, tmp_path):
    trained = make_policy()
    train_policy(trained, [TrainItem(e, o) for e, o in zip(examples, OUTPUTS)], TrainConfig(batch_size=5), 1e-2, 1, seed=0)
    trained.save(tmp_path / "ckpt")
    ids = trained.collate([TrainItem(examples[1], OUTPUTS[1])])["input_ids"]
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "ckpt").eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids).logits, trained.unwrapped(ids).logits, rtol=1e-5, atol=1e-5)
    other = make_policy(seed=1)
    other.load_weights(tmp_path / "ckpt")
    np.testing.assert_array_equal(other.log_probs(examples, OUTPUTS), trained.log_probs(examples, OUTPUTS))


@pytest.mark.real
def test_smollm2_samples_translations():
    policy = CausalLMPolicy.from_pretrained("smollm2", Accelerator(), prompt_template="Translate German to English:\n{text}",
                                            batch_size=2)
    german = [Example("Ich habe heute keine Zeit."), Example("Das Wetter ist schön.")]
    samples = policy.sample(german, k=2, temperature=0.7, seed=0, max_new_tokens=16)
    assert len(samples) == 2 and all(len(s) == 2 and all(isinstance(x, str) and x.strip() for x in s) for s in samples)
    assert 0 < policy.last_generated_tokens <= 2 * 2 * 16
    print(samples)


def test_a_model_whose_logits_are_not_its_head_of_the_last_states_gets_every_positions_logits():
    """Gemma 2 soft-caps its logits after the head: the head applied here would not reproduce them, so the
    token pass falls back to the model's own logits (checked once per model class)."""
    from transformers import Gemma2Config, Gemma2ForCausalLM

    from restlm.policies.causal import causal_forward, first_scored_column, rollout_batch

    torch.manual_seed(0)
    config = Gemma2Config(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=2, head_dim=8, final_logit_softcapping=0.5)
    model = Gemma2ForCausalLM(config).eval()
    batch = rollout_batch([[1, 2, 3, 4, 5], [6, 7]], [[8, 9], [10, 11, 12]], 0)
    first = first_scored_column(batch["labels"])
    with torch.no_grad():
        logits, states = causal_forward(model, batch, first, hidden=True)
        full = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], output_hidden_states=True)
    torch.testing.assert_close(logits, full.logits[:, first:-1])
    torch.testing.assert_close(states, full.hidden_states[-1][:, first:-1])
    assert logits.abs().max() <= 0.5  # soft-capped
