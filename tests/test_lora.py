"""LoRA on the causal, seq2seq and classifier policies: only the adapters (and a classifier's new
head) train and they change; `save` writes a merged model that plain `from_pretrained` loads with
the policy's logits, plus the adapter, which `load_weights` restores exactly."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from accelerate import Accelerator
from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoModelForSequenceClassification

from restlm.config import TrainConfig
from restlm.data.examples import Example
from restlm.errors import ConfigError
from restlm.policies.base import TrainItem
from restlm.policies.causal import CausalLMPolicy
from restlm.policies.classifier import ClassifierPolicy
from restlm.policies.lora import apply_lora, is_lora, merged_for_save
from restlm.policies.seq2seq import Seq2SeqPolicy
from restlm.training import train_policy
from tiny_models import save_tiny, tiny_llama, tiny_tokenizer
from tiny_models import SEQ2SEQ_OUTPUTS as OUTPUTS, SEQ2SEQ_SOURCES as SOURCES, tiny_t5, tiny_t5_tokenizer

LORA = {"r": 4, "alpha": 8}
EXAMPLES = [Example(s) for s in SOURCES]
ITEMS = [TrainItem(e, o) for e, o in zip(EXAMPLES, OUTPUTS)] * 2
# two steps: B starts at zero, so A only gets a gradient from the second step on
TWO_STEPS = TrainConfig(batch_size=5, weight_decay=0.0, warmup_ratio=0.0)


def train_and_check_only_lora_changes(policy, items=ITEMS, extra_trainable=()) -> None:
    trainable = {n for n, p in policy.model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or any(e in n for e in extra_trainable) for n in trainable)
    assert any("lora_A" in n for n in trainable) and any("lora_B" in n for n in trainable)
    before = {n: p.detach().clone() for n, p in policy.model.named_parameters()}
    stats = train_policy(policy, items, TWO_STEPS, 1e-2, 1, seed=0)
    assert stats.steps == 2
    changed = {n for n, p in policy.model.named_parameters() if not torch.equal(p, before[n])}
    assert changed == trainable


def logits(model, **inputs) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(**inputs).logits


def test_no_config_means_no_lora_and_unknown_keys_are_errors():
    model = tiny_llama(300)
    assert apply_lora(model, None, "CAUSAL_LM") is model and merged_for_save(model) is model
    with pytest.raises(ConfigError, match="lora.rank"):
        apply_lora(model, {"rank": 4}, "CAUSAL_LM")


def test_causal_lora_trains_saves_merged_and_resumes(tmp_path):
    folder = save_tiny(tmp_path / "base")
    policy = CausalLMPolicy.from_pretrained(str(folder), Accelerator(), lora=LORA, batch_size=5)
    assert is_lora(policy.unwrapped)
    assert {n.split(".")[-2] for n, p in policy.model.named_parameters() if p.requires_grad} == {"default"}
    assert any("q_proj.lora_A" in n for n, _ in policy.model.named_parameters())  # Llama default: q and v
    train_and_check_only_lora_changes(policy)

    policy.save(tmp_path / "ckpt")
    assert not (tmp_path / "ckpt" / "adapter_config.json").exists()  # else transformers would load it as peft
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "ckpt")
    assert not is_lora(loaded)
    batch = policy.collate(ITEMS[:5])
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    merged = logits(merged_for_save(policy.unwrapped), **inputs)
    torch.testing.assert_close(logits(loaded, **inputs), merged, rtol=0, atol=1e-5)
    torch.testing.assert_close(logits(policy.unwrapped, **inputs), merged, rtol=0, atol=1e-5)
    assert is_lora(policy.unwrapped)  # saving left the policy's adapter in place

    resumed = CausalLMPolicy.from_pretrained(str(folder), Accelerator(), lora=LORA, batch_size=5)
    assert not np.array_equal(resumed.log_probs(EXAMPLES, OUTPUTS), policy.log_probs(EXAMPLES, OUTPUTS))
    resumed.load_weights(tmp_path / "ckpt")
    np.testing.assert_array_equal(resumed.log_probs(EXAMPLES, OUTPUTS), policy.log_probs(EXAMPLES, OUTPUTS))


def test_all_linear_targets():
    tok = tiny_tokenizer()
    policy = CausalLMPolicy(apply_lora(tiny_llama(len(tok)), {"target_modules": "all-linear"}, "CAUSAL_LM"), tok,
                            Accelerator())
    adapted = {n.split(".lora_A")[0].split(".")[-1] for n, _ in policy.model.named_parameters() if "lora_A" in n}
    assert adapted == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}


def test_seq2seq_lora_trains_and_saves_merged(tmp_path):
    tok = tiny_t5_tokenizer()
    policy = Seq2SeqPolicy(apply_lora(tiny_t5(len(tok)), LORA, "SEQ_2_SEQ_LM"), tok, Accelerator(), batch_size=5)
    train_and_check_only_lora_changes(policy)
    policy.save(tmp_path / "ckpt")
    loaded = AutoModelForSeq2SeqLM.from_pretrained(tmp_path / "ckpt")
    batch = policy.collate(ITEMS[:5])
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"],
              "decoder_input_ids": loaded.prepare_decoder_input_ids_from_labels(labels=batch["labels"])}
    merged = logits(merged_for_save(policy.unwrapped), **inputs)
    torch.testing.assert_close(logits(loaded, **inputs), merged, rtol=0, atol=1e-5)
    torch.testing.assert_close(logits(policy.unwrapped, **inputs), merged, rtol=0, atol=1e-5)


LoraClassifierPolicy = ClassifierPolicy  # ClassifierPolicy is LoRA-aware itself (LoraCheckpoints)


def test_classifier_lora_trains_head_and_adapters_and_saves_merged(tiny_model_dir, tiny_data, tmp_path):
    model = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir)
    base = ClassifierPolicy.from_pretrained(str(tiny_model_dir), Accelerator())
    policy = LoraClassifierPolicy(apply_lora(model, LORA, "SEQ_CLS"), base.tokenizer, Accelerator(), max_length=32)
    examples = [Example(a, b, c) for a, b, c in tiny_data["train_rows"][:8]]
    items = [TrainItem(e, e.label) for e in examples]
    train_and_check_only_lora_changes(policy, items[:8] + items[:2], extra_trainable=("classifier",))
    policy.save(tmp_path / "ckpt")
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "ckpt").eval()
    batch = policy.tokenizer([e.text for e in examples], [e.text_pair for e in examples], padding=True,
                             return_tensors="pt")
    torch.testing.assert_close(logits(loaded, **batch), policy.logits(examples), rtol=0, atol=1e-5)
    resumed = LoraClassifierPolicy(apply_lora(AutoModelForSequenceClassification.from_pretrained(tiny_model_dir),
                                              LORA, "SEQ_CLS"), base.tokenizer, Accelerator(), max_length=32)
    resumed.load_weights(tmp_path / "ckpt")
    torch.testing.assert_close(resumed.logits(examples), policy.logits(examples), rtol=0, atol=0)


def test_early_stopping_under_lora_keeps_only_the_adapters_and_restores_them(tmp_path):
    from restlm.methods.sft import EarlyStopping

    class Scored:  # the first epoch is the best
        selection_metric = "dev_reward"
        scores = [0.9, 0.1]

        def selection_score(self, policy):
            return self.scores.pop(0)

    policy = CausalLMPolicy.from_pretrained(str(save_tiny(tmp_path / "base")), Accelerator(), lora=LORA, batch_size=5)
    stopping = EarlyStopping(Scored(), policy, patience=1)
    after_first = {}

    def after_epoch(epoch):
        if epoch == 1:
            after_first.update({n: p.detach().clone() for n, p in policy.model.named_parameters()})
        return stopping(epoch)

    assert train_policy(policy, ITEMS, TWO_STEPS, 1e-2, 3, seed=0, after_epoch=after_epoch).steps == 4
    kept = set(stopping.best_weights)
    assert kept and all("lora_" in k for k in kept)  # no copy of the frozen base
    stopping.restore_best()
    assert all(torch.equal(p, after_first[n]) for n, p in policy.model.named_parameters())


def test_model_lora_rank_means_the_same_adapters_for_a_classifier_and_a_generative_policy(tiny_model_dir, tmp_path):
    """`model.lora_rank` builds one LoRA setting (policies.lora.lora_of_rank: alpha twice the rank) for every
    policy kind: a classifier's adapters once got alpha 16 whatever the rank, the generative ones 2 x rank."""
    from restlm.config import load_config
    from restlm.policies.lora import lora_of_rank
    from restlm.tasks import build_task

    assert lora_of_rank(None) is None and lora_of_rank(4) == {"r": 4, "alpha": 8}
    policies = {"classification": build_task(load_config(None, [f"model.name={tiny_model_dir}", "model.lora_rank=4"]),
                                             Accelerator()).new_policy(0),
                "translation": build_task(load_config(None, ["task=translation", "model.lora_rank=4",
                                                             f"model.name={save_tiny(tmp_path / 'llama')}"]),
                                          Accelerator()).new_policy(0)}
    for kind, policy in policies.items():
        adapted = [m for m in policy.model.modules() if isinstance(getattr(m, "scaling", None), dict)]
        scalings, ranks = {m.scaling["default"] for m in adapted}, {m.r["default"] for m in adapted}
        assert scalings == {2.0} and ranks == {4}, kind
