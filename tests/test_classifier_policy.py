"""ClassifierPolicy on a tiny random BERT: sample() shapes and seeding (what it guarantees: the
draw for input i depends on the seed, i and that input only, not on batching), greedy == argmax,
log_probs == log softmax of the logits, one train_policy step changes every trainable parameter,
length_bucketed_order is a permutation, single sentences work, and a checkpoint written by
`save` loads in plain transformers (AutoModel and pipeline) and through `load_weights`."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from accelerate import Accelerator

from restlm.config import TrainConfig
from restlm.data.examples import Example
from restlm.policies.base import TrainItem
from restlm.policies.classifier import ClassifierPolicy
from restlm.training import length_bucketed_batches, length_bucketed_order, train_policy


def make_policy(model_dir, batch_size=16) -> ClassifierPolicy:
    return ClassifierPolicy.from_pretrained(str(model_dir), Accelerator(), max_length=32, batch_size=batch_size)


@pytest.fixture(scope="module")
def policy(tiny_model_dir):
    return make_policy(tiny_model_dir)


@pytest.fixture(scope="module")
def examples(tiny_data):
    return [Example(a, b, c, uid=str(i)) for i, (a, b, c) in enumerate(tiny_data["train_rows"][:12])]


def test_sample_shapes_and_values(policy, examples):
    samples = policy.sample(examples, k=3, temperature=1.0, greedy=False, seed=0)
    assert len(samples) == len(examples)
    assert all(len(s) == 3 and set(s) <= {0, 1} for s in samples)
    greedy = policy.sample(examples, k=3, temperature=1.0, greedy=True, seed=0)
    assert all(len(s) == 1 for s in greedy)  # greedy gives the single most likely label


def test_greedy_is_argmax(policy, examples):
    logits = policy.logits(examples)
    assert logits.shape == (12, 2)
    greedy = policy.sample(examples, k=1, greedy=True)
    assert [s[0] for s in greedy] == logits.argmax(-1).tolist() == policy.predict(examples)
    # a very low temperature samples the argmax too
    cold = policy.sample(examples, k=4, temperature=1e-4, greedy=False, seed=3)
    assert [set(s) for s in cold] == [{g[0]} for g in greedy]


def test_sampling_is_reproducible_and_seeded(policy, examples):
    first = policy.sample(examples, k=8, temperature=2.0, seed=11)
    assert policy.sample(examples, k=8, temperature=2.0, seed=11) == first
    assert policy.sample(examples, k=8, temperature=2.0, seed=12) != first


def test_sampling_does_not_depend_on_batching(tiny_model_dir, policy, examples):
    one_at_a_time = make_policy(tiny_model_dir, batch_size=1)
    assert one_at_a_time.sample(examples, k=8, temperature=2.0, seed=5) == policy.sample(examples, k=8, temperature=2.0, seed=5)


def test_sampling_draw_depends_on_seed_position_and_input_only(policy, examples, tiny_data):
    full = policy.sample(examples, k=8, temperature=2.0, seed=5)
    # a prefix keeps the positions, so its draws are the same
    assert policy.sample(examples[:5], k=8, temperature=2.0, seed=5) == full[:5]
    # changing the input at position 3 leaves every other position's draw alone
    other = list(examples)
    other[3] = Example(*tiny_data["dev_rows"][0])
    changed = policy.sample(other, k=8, temperature=2.0, seed=5)
    assert changed[:3] == full[:3] and changed[4:] == full[4:]


def test_sampling_follows_the_softmax(policy, examples):
    logits = policy.logits(examples[:1])
    p1 = torch.softmax(logits / 2.0, -1)[0, 1].item()
    draws = policy.sample(examples[:1], k=4000, temperature=2.0, seed=0)[0]
    # binomial standard error at k=4000 is at most 0.008; allow 4 of them
    assert np.mean(draws) == pytest.approx(p1, abs=0.032)


def test_log_probs_match_logits(policy, examples):
    outputs = [i % 2 for i in range(12)]
    expected = torch.log_softmax(policy.logits(examples), -1)[torch.arange(12), torch.tensor(outputs)]
    np.testing.assert_allclose(policy.log_probs(examples, outputs), expected.numpy(), rtol=1e-6)
    # padding in a batch does not change an input's logits
    single = torch.cat([policy.logits([e]) for e in examples])
    torch.testing.assert_close(single, policy.logits(examples), rtol=1e-5, atol=1e-5)
    # and the differentiable path gives the same numbers
    batch = policy.collate([TrainItem(e, o) for e, o in zip(examples, outputs)])
    policy.model.eval()
    with torch.no_grad():
        differentiable = policy.output_log_probs(batch)
    torch.testing.assert_close(differentiable, expected, rtol=1e-5, atol=1e-5)


def test_one_train_step_changes_every_parameter(tiny_model_dir, examples):
    fresh = make_policy(tiny_model_dir)
    before = {n: p.detach().clone() for n, p in fresh.model.named_parameters() if p.requires_grad}
    items = [TrainItem(e, e.label) for e in examples[:8]]
    stats = train_policy(fresh, items, TrainConfig(batch_size=8, weight_decay=0.0, warmup_ratio=0.0), 1e-2, 1, seed=0)
    assert (stats.steps, stats.examples) == (1, 8)
    assert np.isfinite(stats.mean_loss) and stats.mean_loss > 0
    unchanged = [n for n, p in fresh.model.named_parameters() if n in before and torch.equal(p, before[n])]
    assert unchanged == []


def test_training_lowers_the_loss(tiny_model_dir, examples):
    fresh = make_policy(tiny_model_dir)
    items = [TrainItem(e, e.label) for e in examples]
    nll_before = -fresh.log_probs(examples, [e.label for e in examples]).mean()
    train_policy(fresh, items, TrainConfig(batch_size=4, weight_decay=0.0), 1e-2, 15, seed=0)
    nll_after = -fresh.log_probs(examples, [e.label for e in examples]).mean()
    assert nll_after < nll_before - 0.1, (nll_before, nll_after)


def test_zero_weight_items_do_not_train(tiny_model_dir, examples):
    fresh = make_policy(tiny_model_dir)
    before = {n: p.detach().clone() for n, p in fresh.model.named_parameters()}
    items = [TrainItem(e, e.label, 0.0) for e in examples[:8]]
    train_policy(fresh, items, TrainConfig(batch_size=8, weight_decay=0.0), 1e-2, 1, seed=0)
    assert all(torch.equal(p, before[n]) for n, p in fresh.model.named_parameters())


def test_length_bucketed_order_is_a_permutation():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 200, size=437).tolist()
    order = length_bucketed_order(lengths, 8, np.random.default_rng(1))
    assert sorted(order) == list(range(437))
    assert order == length_bucketed_order(lengths, 8, np.random.default_rng(1))
    assert order != length_bucketed_order(lengths, 8, np.random.default_rng(2))
    assert length_bucketed_order([], 8, np.random.default_rng(0)) == []
    assert order == [i for b in length_bucketed_batches(lengths, 8, np.random.default_rng(1)) for i in b]


def test_length_bucketed_batches_are_sorted_and_cover_every_item():
    lengths = np.random.default_rng(0).integers(1, 200, size=445).tolist()  # 445 = 8 * 55 + 5: one short batch
    batches = length_bucketed_batches(lengths, 8, np.random.default_rng(3))
    assert sorted(i for b in batches for i in b) == list(range(445))
    assert sorted(len(b) for b in batches) == [5] + [8] * 55
    assert all([lengths[i] for i in b] == sorted(lengths[i] for i in b) for b in batches)
    # batches are shuffled: the short one is not always last, and the order differs by seed
    assert batches != length_bucketed_batches(lengths, 8, np.random.default_rng(4))


def test_train_policy_steps_follow_the_batches(tiny_model_dir, examples):
    # 12 items in batches of 8 for 2 epochs: 2 batches per epoch (8 + 4), never one spanning epochs
    fresh = make_policy(tiny_model_dir)
    stats = train_policy(fresh, [TrainItem(e, e.label) for e in examples], TrainConfig(batch_size=8), 1e-3, 2, seed=0)
    assert (stats.steps, stats.examples) == (4, 24)


def test_single_sentences(tiny_model_dir):
    fresh = make_policy(tiny_model_dir)
    singles = [Example("the cat sat on red mat", None, 1), Example("a dog ran in blue car", None, 0),
               Example("fish swam", None, 1)]
    encoded = fresh._encode(singles)
    assert all(set(row["token_type_ids"]) == {0} for row in encoded)
    assert len(fresh.sample(singles, k=2, temperature=1.0, seed=0)) == 3
    expected = torch.log_softmax(fresh.logits(singles), -1)[torch.arange(3), torch.tensor([1, 0, 1])]
    np.testing.assert_allclose(fresh.log_probs(singles, [1, 0, 1]), expected.numpy(), rtol=1e-6)
    stats = train_policy(fresh, [TrainItem(e, e.label) for e in singles], TrainConfig(batch_size=2), 1e-3, 1, seed=0)
    assert stats.steps == 2 and np.isfinite(stats.mean_loss)


def test_checkpoint_loads_in_plain_transformers(tiny_model_dir, examples, tmp_path):
    from transformers import AutoModelForSequenceClassification, pipeline

    fresh = make_policy(tiny_model_dir)
    train_policy(fresh, [TrainItem(e, e.label) for e in examples], TrainConfig(batch_size=4), 1e-2, 1, seed=0)
    folder = tmp_path / "ckpt"
    fresh.save(folder)
    assert (folder / "model.safetensors").exists() and not (tmp_path / "ckpt.tmp").exists()
    loaded = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    batch = fresh.tokenizer([e.text for e in examples[:3]], [e.text_pair for e in examples[:3]],
                            padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = loaded(**batch).logits
    torch.testing.assert_close(logits, fresh.logits(examples[:3]), rtol=1e-5, atol=1e-5)
    classify = pipeline("text-classification", model=str(folder), device="cpu")
    out = classify({"text": examples[0].text, "text_pair": examples[0].text_pair})
    out = out[0] if isinstance(out, list) else out
    assert out["label"] == f"LABEL_{fresh.predict(examples[:1])[0]}"
    assert 0.5 <= out["score"] <= 1.0
    # and back into a policy whose weights differ
    other = make_policy(tiny_model_dir)
    assert not torch.equal(other.logits(examples), fresh.logits(examples))
    other.load_weights(folder)
    torch.testing.assert_close(other.logits(examples), fresh.logits(examples), rtol=0, atol=0)


def test_a_decoder_classifier_reads_a_pair_on_two_lines_and_a_bert_keeps_its_separator(policy, examples):
    """A Llama-style tokenizer has no pair template: left alone it glues the texts ("sat.A cat"). The pair is
    one text on two lines there; BERT's tokenizer keeps its own [SEP] and segment ids."""
    from transformers import LlamaConfig, LlamaForSequenceClassification

    from tiny_models import tiny_tokenizer

    tok = tiny_tokenizer(chat=False)
    tok.pad_token = tok.eos_token
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=4, num_key_value_heads=2, num_labels=2, pad_token_id=tok.pad_token_id)
    decoder = ClassifierPolicy(LlamaForSequenceClassification(config), tok, Accelerator(), max_length=64)
    pair = [Example("the cat sat.", "A cat was sitting.", 1), Example("one text", None, 0)]
    encoded = decoder._encode(pair)
    assert encoded[0]["input_ids"] == tok("the cat sat.\nA cat was sitting.")["input_ids"]
    assert encoded[1]["input_ids"] == tok("one text")["input_ids"]
    assert decoder.predict(pair) and len(decoder.logits(pair)) == 2
    bert = policy._encode(examples[:1])[0]
    assert policy.tokenizer.sep_token_id in bert["input_ids"][:-1] and set(bert["token_type_ids"]) == {0, 1}
