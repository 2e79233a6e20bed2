"""SFT and DPO through TRL on a tiny random Llama: the first logged loss against a hand-computed
value (completion-only NLL for SFT; -log sigmoid(beta * ((lp_c - ref_c) - (lp_r - ref_r))) for
DPO, and log 2 when policy == reference), parameters that change while the reference does not,
LoRA merged on save, a policy trained in place, bad input; and one DPO step on SmolLM2 (real)."""
from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from tiny_models import tiny_llama, tiny_tokenizer
from transformers import AutoModelForCausalLM

from restlm.data.examples import Example
from restlm.data.location import data_root
from restlm.data.preferences import PreferencePair, read_preferences
from restlm.dpo import DpoConfig, dpo
from restlm.errors import DataError, RestlmError
from restlm.policies.causal import CausalLMPolicy
from restlm.sft import SftConfig, sft

EXAMPLES = [Example("the cat sat", target="on the mat"), Example("Answer: Yes", target="No no"),
            Example("the dog ran in the park", target="the bird flew"), Example("Yes", target="Answer")]
PAIRS = [PreferencePair("the cat sat", " on the mat", " No no"), PreferencePair("Answer:", " Yes", " No"),
         PreferencePair("the dog ran", " in the park", " over the same tree")]


def make_policy(seed: int = 0) -> CausalLMPolicy:
    tok = tiny_tokenizer(chat=True)
    return CausalLMPolicy(tiny_llama(len(tok), seed), tok, Accelerator(), prompt_template="Say: {text}")


def save_tiny(folder, seed: int = 0):
    tok = tiny_tokenizer(chat=False)
    tiny_llama(len(tok), seed).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def completion_log_probs(model, tok, prompt: str, completion: str) -> torch.Tensor:
    """Per-token log p(completion + EOS | prompt), tokenized the way TRL does (prompt + completion as one text)."""
    prompt_ids = tok(prompt)["input_ids"]
    ids = tok(prompt + completion + tok.eos_token)["input_ids"]
    assert ids[: len(prompt_ids)] == prompt_ids  # the completion starts right after the prompt
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].float()
    log_probs = torch.log_softmax(logits[:-1], -1).gather(-1, torch.tensor(ids[1:])[:, None])[:, 0]
    return log_probs[len(prompt_ids) - 1 :]


def changed(model, before: dict) -> set[str]:
    return {n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])}


def snapshot(model) -> dict:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


# ---------------------------------------------------------------- SFT
def test_sft_first_loss_is_the_completion_only_nll_and_the_policy_trains_in_place(tmp_path):
    policy = make_policy()
    model, tok = policy.unwrapped, policy.tokenizer
    per_token = [completion_log_probs(model, tok, policy.prompt(e), e.target) for e in EXAMPLES]
    hand = -torch.cat(per_token).mean().item()  # mean over completion tokens only, EOS included
    before = snapshot(model)
    stats = sft(policy, EXAMPLES, SftConfig(learning_rate=1e-2, warmup_ratio=0.0, epochs=2, batch_size=4), out=tmp_path / "sft")
    assert stats.steps == 2 and stats.rows == 8 and len(stats.losses) == 2
    assert stats.losses[0] == pytest.approx(hand, rel=1e-4)
    assert stats.losses[1] < stats.losses[0]
    assert changed(model, before) == set(before)  # every tensor of the policy's own model moved
    saved = AutoModelForCausalLM.from_pretrained(tmp_path / "sft")
    assert all(torch.equal(p, model.state_dict()[n]) for n, p in saved.state_dict().items())


def test_sft_from_a_jsonl_file_and_a_model_path_with_lora(tmp_path):
    data = tmp_path / "sft.jsonl"
    data.write_text("".join(json.dumps({"prompt": e.text, "completion": " " + e.target}) + "\n" for e in EXAMPLES))
    base = save_tiny(tmp_path / "base")
    stats = sft(str(base), data, SftConfig(learning_rate=1e-2, warmup_ratio=0.0, batch_size=2, lora={"r": 4, "alpha": 8}),
                out=tmp_path / "out")
    assert stats.steps == 2 and all(math.isfinite(v) for v in stats.losses)
    assert not (tmp_path / "out" / "adapter_config.json").exists()  # merged: plain transformers loads it
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "out").state_dict()
    original = AutoModelForCausalLM.from_pretrained(base).state_dict()
    moved = {n for n in original if not torch.equal(merged[n], original[n])}
    assert moved and all("q_proj" in n or "v_proj" in n for n in moved)  # LoRA's default targets only


def test_sft_bad_input_is_one_line(tmp_path):
    with pytest.raises(RestlmError, match="has none") as info:
        sft(make_policy(), [Example("no target")])
    assert "\n" not in str(info.value)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "a", "completion": "b"}\n{"prompt": "a"}\n')
    with pytest.raises(DataError, match="bad.jsonl:2: missing key 'completion'"):
        sft(make_policy(), bad)


# ---------------------------------------------------------------- DPO
def test_dpo_first_loss_is_log_2_when_policy_is_reference_and_parameters_change(tmp_path):
    policy = make_policy()
    before = snapshot(policy.unwrapped)
    stats = dpo(policy, PAIRS, DpoConfig(learning_rate=1e-2, warmup_ratio=0.0, epochs=2, batch_size=3), out=tmp_path / "dpo")
    assert stats.steps == 2 and stats.losses[0] == pytest.approx(math.log(2), abs=1e-6)
    assert stats.losses[1] < stats.losses[0]
    assert changed(policy.unwrapped, before) == set(before)
    saved = AutoModelForCausalLM.from_pretrained(tmp_path / "dpo")
    assert all(torch.equal(p, policy.unwrapped.state_dict()[n]) for n, p in saved.state_dict().items())


def test_dpo_first_loss_matches_the_hand_formula_with_another_reference(tmp_path):
    base = save_tiny(tmp_path / "policy", seed=0)
    tok = tiny_tokenizer(chat=False)
    policy_model, reference = tiny_llama(len(tok), seed=0), tiny_llama(len(tok), seed=1)
    reference_before = snapshot(reference)
    beta = 0.5

    def logp(model, prompt, response):
        return completion_log_probs(model, tok, prompt, response).sum()

    margins = [(logp(policy_model, p.prompt, p.chosen) - logp(reference, p.prompt, p.chosen))
               - (logp(policy_model, p.prompt, p.rejected) - logp(reference, p.prompt, p.rejected)) for p in PAIRS]
    hand = torch.stack([-F.logsigmoid(beta * m) for m in margins]).mean().item()
    assert abs(hand - math.log(2)) > 1e-3  # the reference differs: the value is not the trivial one
    stats = dpo(str(base), PAIRS, DpoConfig(beta=beta, learning_rate=1e-3, batch_size=3), reference=reference)
    assert stats.losses[0] == pytest.approx(hand, rel=1e-4)
    assert not changed(reference, reference_before)


def test_dpo_with_lora_uses_the_base_as_reference_and_saves_merged(tmp_path):
    base = save_tiny(tmp_path / "base")
    stats = dpo(str(base), PAIRS, DpoConfig(learning_rate=1e-2, warmup_ratio=0.0, epochs=2, batch_size=3, lora={"r": 4, "alpha": 8}),
                out=tmp_path / "out")
    assert stats.losses[0] == pytest.approx(math.log(2), abs=1e-6)  # LoRA B starts at 0: policy == base
    assert stats.losses[1] < stats.losses[0]
    assert not (tmp_path / "out" / "adapter_config.json").exists()
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "out").state_dict()
    original = AutoModelForCausalLM.from_pretrained(base).state_dict()
    assert any(not torch.equal(merged[n], original[n]) for n in original)


def test_dpo_bad_input(tmp_path):
    bad = tmp_path / "prefs.jsonl"
    bad.write_text('{"prompt": "p", "chosen": "c", "rejected": 1}\n')
    with pytest.raises(DataError, match="prefs.jsonl:1: key 'rejected' holds int, not text"):
        dpo("unused-because-the-data-fails-first", bad)
    with pytest.raises(ValueError, match="lora"):
        dpo(make_policy(), PAIRS, DpoConfig(lora={"r": 4}))


@pytest.mark.real
def test_dpo_step_on_smollm2_with_lora(tmp_path):
    """One DPO step of SmolLM2 + LoRA on four real HH pairs: log 2 at the start, a merged save that loads."""
    pairs = read_preferences(data_root() / "hh_rlhf" / "helpful_base_pairs.jsonl", limit=4)
    stats = dpo("smollm2", pairs, DpoConfig(batch_size=4, max_length=128, lora={"r": 4, "alpha": 8}),
                out=tmp_path / "out")
    assert stats.steps == 1 and stats.losses[0] == pytest.approx(math.log(2), abs=1e-5)
    assert AutoModelForCausalLM.from_pretrained(tmp_path / "out").config.model_type == "llama"


@pytest.mark.real
def test_sft_of_smollm2_on_multi30k_lowers_the_completion_nll():
    from accelerate import Accelerator

    from restlm.data.parallel import load_multi30k
    from restlm.policies.causal import CausalLMPolicy

    policy = CausalLMPolicy.from_pretrained("smollm2", Accelerator(), prompt_template="Translate into English: {text}",
                                            max_new_tokens=16, batch_size=4)
    pairs = load_multi30k(None, "train", limit=8)
    before = policy.log_probs(pairs, [e.target for e in pairs])
    stats = sft(policy, pairs, SftConfig(learning_rate=5e-5, warmup_ratio=0.0, epochs=2, batch_size=4))
    after = policy.log_probs(pairs, [e.target for e in pairs])
    assert stats.steps == 4 and all(math.isfinite(v) for v in stats.losses)
    assert after.mean() > before.mean() + 1.0  # the references got more likely (log-prob per sentence)


@pytest.mark.parametrize("engine", ["hf", "torch"])
def test_an_engines_bf16_copy_follows_the_weights_dpo_trained(engine):
    """TRL's trainer moves no tensor version counter; the copy a bf16 engine generates with must still be
    refreshed after DPO (it was not: compare's DPO row evaluated the start policy)."""
    from restlm.config import GenerationConfig

    policy = make_policy()
    policy.use_engine(GenerationConfig(engine=engine, dtype="bfloat16"))
    policy.sample([Example("the cat sat")], k=1, greedy=True, seed=0)  # the copy is made from the start
    syncs = policy.engine.syncs
    dpo(policy, PAIRS, DpoConfig(learning_rate=1e-2, warmup_ratio=0.0, epochs=2, batch_size=3))
    copy = policy.engine.model()
    assert policy.engine.syncs == syncs + 1
    for name, weight in policy.unwrapped.state_dict().items():
        assert torch.equal(copy.state_dict()[name], weight.to(torch.bfloat16)), name


@pytest.mark.parametrize("train", ["dpo", "sft"])
def test_a_copy_made_after_trl_trained_the_policy_is_its_own_model(train):
    """TRL's DPOTrainer patches model.forward with a closure over the model; left in place, a deepcopy (PPO's
    frozen reference, an engine's bf16 copy) ran the original model: PPO after DPO had KL 0 to itself."""
    import copy

    policy = make_policy()
    if train == "dpo":
        dpo(policy, PAIRS, DpoConfig(learning_rate=1e-2, warmup_ratio=0.0, epochs=1, batch_size=3))
    else:
        sft(policy, EXAMPLES, SftConfig(learning_rate=1e-2, warmup_ratio=0.0, epochs=1, batch_size=4))
    assert "forward" not in vars(policy.unwrapped)
    frozen = copy.deepcopy(policy.unwrapped)
    ids = torch.tensor([[1, 5, 7, 9]])
    with torch.no_grad():
        before = policy.unwrapped(ids).logits
        for p in frozen.parameters():
            p.zero_()
        assert torch.equal(policy.unwrapped(ids).logits, before)  # zeroing the copy leaves the policy alone
        assert not torch.equal(frozen(ids).logits, before)  # and the copy computes with its own weights
