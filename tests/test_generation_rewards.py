"""Generation rewards (sentence chrF and BLEU against Example.target, weighted sums, specs by name)
against values worked out by hand, and the corpus-level helpers against sacrebleu itself."""
from __future__ import annotations

import numpy as np
import pytest
import sacrebleu

from restlm.data.examples import Example
from restlm.errors import ConfigError, RestlmError
from restlm.rewards.generation import (
    bleu_reward,
    chrf_reward,
    corpus_bleu,
    corpus_metric_of_rows,
    corpus_chrf,
    generation_reward,
    weighted_sum,
)

REF = "a man rides a red bicycle ."
EXAMPLES = [Example("ein Mann", target=REF, uid="s:1"), Example("zwei", target="a b c d f", uid="s:2"),
            Example("drei", target="the cat sat", uid="s:3")]
OUTPUTS = [REF, "a b c d e", "xyz qqq"]  # identical, 4 of 5 words, disjoint


def unit(reward, outputs=OUTPUTS, examples=EXAMPLES):
    return reward.normalised()(None, examples, outputs)


def test_chrf_identical_is_one_disjoint_is_zero():
    reward = chrf_reward()
    raw = reward(None, EXAMPLES, OUTPUTS)
    assert reward.name == "chrf" and reward.higher_is_better
    assert raw[0] == pytest.approx(100.0) and raw[2] == pytest.approx(0.0, abs=1e-9)
    scores = unit(reward)
    assert scores[0] == pytest.approx(1.0) and scores[2] == pytest.approx(0.0, abs=1e-9)
    # the partial match is what sacrebleu's own sentence_chrf says, on the 0-1 scale
    assert scores[1] == pytest.approx(sacrebleu.sentence_chrf("a b c d e", ["a b c d f"]).score / 100)
    assert 0.0 < scores[1] < 1.0


def test_bleu_by_hand():
    scores = unit(bleu_reward())
    assert scores[0] == 1.0  # 100.00000000000004 from sacrebleu, clipped to 1
    assert scores[2] == 0.0
    # "a b c d e" vs "a b c d f": n-gram precisions 4/5, 3/4, 2/3, 1/2; equal lengths, so no brevity
    # penalty: BLEU = (0.8 * 0.75 * 2/3 * 0.5) ** (1/4) = 0.2 ** 0.25 = 0.668740...
    assert scores[1] == pytest.approx(0.2 ** 0.25, rel=1e-9)


def test_bleu_short_sentences_use_effective_order():
    # two words: no 3- or 4-grams; with effective order the sentence still scores 1, not 0
    assert unit(bleu_reward(), ["a cat"], [Example("x", target="a cat")])[0] == pytest.approx(1.0)


def test_lowercase_option():
    examples, outputs = [Example("x", target="it 's that pyramid .")], ["It 's That Pyramid ."]
    assert unit(bleu_reward(lowercase=True), outputs, examples)[0] == pytest.approx(1.0)
    assert unit(bleu_reward(), outputs, examples)[0] < 0.5
    assert unit(chrf_reward(lowercase=True), outputs, examples)[0] == pytest.approx(1.0)
    assert unit(chrf_reward(), outputs, examples)[0] < 1.0
    assert unit(bleu_reward(lowercase=True, tokenize="none"), outputs, examples)[0] == pytest.approx(1.0)


def test_weighted_sum_by_hand():
    chrf, bleu = chrf_reward(), bleu_reward()
    c, b = unit(chrf), unit(bleu)
    combined = weighted_sum([(chrf, 2.0), (bleu, 1.0)])
    raw = combined(None, EXAMPLES, OUTPUTS)
    # raw: 2 * chrf + 1 * bleu, each in [0, 1]; normalised: divided by the weights' sum, 3
    np.testing.assert_allclose(raw, 2 * c + b)
    np.testing.assert_allclose(unit(combined), (2 * c + b) / 3)
    assert unit(combined)[0] == pytest.approx(1.0) and unit(combined)[2] == pytest.approx(0.0, abs=1e-9)
    assert unit(combined)[1] == pytest.approx((2 * c[1] + 0.2 ** 0.25) / 3)
    with pytest.raises(ValueError):
        weighted_sum([(chrf, -1.0), (bleu, 1.0)])
    with pytest.raises(ValueError):
        weighted_sum([])


def test_specs_by_name():
    assert generation_reward("chrf").name == "chrf"
    assert generation_reward("chrf++").name == "chrf++"
    assert generation_reward("bleu").name == "bleu"
    assert generation_reward("bleu-lc").name == "bleu-lc"
    for unknown in ("nll", "correct", "model:x", "pkg.mod:fn", "blue"):
        assert generation_reward(unknown) is None
    weighted = generation_reward("weighted:chrf=0.7,bleu=0.3")
    assert weighted.name == "weighted(chrf=0.7,bleu=0.3)"
    c, b = unit(chrf_reward()), unit(bleu_reward())
    np.testing.assert_allclose(unit(weighted), 0.7 * c + 0.3 * b)
    np.testing.assert_allclose(weighted(None, EXAMPLES, OUTPUTS), 0.7 * c + 0.3 * b)


@pytest.mark.parametrize("spec, words", [
    ("weighted:chrf=0.7,blue=0.3", "unknown reward 'blue'"),
    ("weighted:chrf=x", "not NAME=WEIGHT"),
    ("weighted:chrf", "not NAME=WEIGHT"),
    ("weighted:chrf=-1", "not NAME=WEIGHT"),
    ("weighted:chrf=0,bleu=0", "sum to 0"),
])
def test_bad_weighted_specs(spec, words):
    with pytest.raises(ConfigError) as caught:
        generation_reward(spec)
    assert caught.value.key == "rest.reward" and words in str(caught.value)


def test_bad_inputs():
    with pytest.raises(RestlmError, match="no target"):
        chrf_reward()(None, [Example("x", uid="u1")], ["y"])
    with pytest.raises(TypeError, match="strings"):
        bleu_reward()(None, [Example("x", target="y")], [1])
    with pytest.raises(ValueError, match="2 examples but 1 outputs"):
        bleu_reward()(None, EXAMPLES[:2], ["y"])


def test_corpus_scores_match_sacrebleu():
    hyps, refs = ["a b c d e", "the cat sat on the mat"], ["a b c d f", "the cat is on the mat"]
    assert corpus_bleu(hyps, refs) == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score)
    assert corpus_chrf(hyps, refs) == pytest.approx(sacrebleu.corpus_chrf(hyps, [refs]).score)
    assert corpus_bleu(refs, refs) == pytest.approx(100.0)
    assert corpus_chrf(refs, refs) == pytest.approx(100.0)
    upper, lower = ["The Cat Sat On The Mat"], ["the cat sat on the mat"]
    assert corpus_bleu(upper, lower, lowercase=True) == pytest.approx(100.0)
    assert corpus_chrf(upper, lower, lowercase=True) == pytest.approx(100.0)
    assert corpus_bleu(upper, lower) < 50.0 and corpus_chrf(upper, lower) < 90.0
    with pytest.raises(ValueError, match="2 hypotheses but 1 references"):
        corpus_bleu(hyps, refs[:1])


@pytest.mark.parametrize("metric, lowercase", [("bleu", False), ("bleu", True), ("chrf", False), ("chrf", True)])
def test_a_resamples_corpus_score_from_summed_statistics_is_sacrebleus(metric, lowercase):
    rng = np.random.default_rng(0)
    words = "The the cat Cat sat on a mat dog ran far away house red blue".split()
    refs = [" ".join(rng.choice(words, rng.integers(3, 12))) for _ in range(40)]
    hyps = [" ".join(rng.choice(words, rng.integers(1, 12))) for _ in range(40)]
    of_rows = corpus_metric_of_rows(hyps, refs, metric, lowercase=lowercase)
    score = corpus_bleu if metric == "bleu" else corpus_chrf
    for rows in (np.arange(40), rng.integers(0, 40, 40), rng.integers(0, 40, 7), np.array([3, 3, 3])):
        expected = score([hyps[i] for i in rows], [refs[i] for i in rows], lowercase=lowercase)
        assert of_rows(rows) == pytest.approx(expected, abs=1e-9), rows
