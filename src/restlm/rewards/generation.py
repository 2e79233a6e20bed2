"""Rewards of generated text against the reference (`Example.target`), by sacrebleu.

Sentence scores are on sacrebleu's 0-100 scale; each Reward's `to_unit` divides by 100, so
`build_reward(..., normalise=True)` gives [0, 1]. By name (see `generation_reward`):
  chrf, chrf++, bleu        add "-lc" to lower-case both sides first (IWSLT14 references are
                            lower-cased); e.g. "bleu-lc"
  weighted:chrf=0.7,bleu=0.3  weighted sum of the components' [0, 1] scores
Corpus-level `corpus_bleu` and `corpus_chrf` are for evaluation, not for rewards.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from sacrebleu.metrics import BLEU, CHRF

from restlm.data.examples import Example
from restlm.errors import ConfigError, RestlmError
from restlm.rewards.base import Reward


def chrf_reward(word_order: int = 0, lowercase: bool = False) -> Reward:
    """Sentence chrF (word_order=2: chrF++) of each output against its example's target, 0-100."""
    metric = CHRF(word_order=word_order, lowercase=lowercase)
    name = {0: "chrf", 2: "chrf++"}.get(word_order, f"chrf(word_order={word_order})") + ("-lc" if lowercase else "")

    def score(policy, examples, outputs):
        return [metric.sentence_score(h, refs).score for h, refs in _pairs(examples, outputs)]

    return Reward(name, score, True, _percent_to_unit)


def bleu_reward(lowercase: bool = False, tokenize: str = "13a", smooth_method: str = "exp") -> Reward:
    """Sentence BLEU of each output against its example's target, 0-100.

    Effective order (n-gram orders longer than the sentence are left out) and sacrebleu's
    'exp' smoothing, its defaults for sentence BLEU, so short outputs do not all score 0.
    `tokenize='none'` scores text that is already tokenized (IWSLT14) exactly as it is.
    """
    metric = BLEU(lowercase=lowercase, tokenize=tokenize, smooth_method=smooth_method, effective_order=True)

    def score(policy, examples, outputs):
        return [metric.sentence_score(h, refs).score for h, refs in _pairs(examples, outputs)]

    return Reward("bleu" + ("-lc" if lowercase else ""), score, True, _percent_to_unit)


def weighted_sum(rewards: list[tuple[Reward, float]]) -> Reward:
    """sum_k w_k * unit_k, where unit_k is reward k mapped to [0, 1] by its `normalised()`.

    Weights must be >= 0 with a positive sum; `to_unit` divides by that sum, so the
    normalised reward is in [0, 1] (and equals the raw one when the weights sum to 1).
    """
    if not rewards:
        raise ValueError("weighted_sum needs at least one (reward, weight) pair")
    weights = [float(w) for _, w in rewards]
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(f"weights must be >= 0 with a positive sum, not {weights}")
    units = [(reward.normalised(), w) for reward, w in rewards]
    total = sum(weights)

    def score(policy, examples, outputs):
        return sum(w * unit(policy, examples, outputs) for unit, w in units)

    name = "weighted(" + ",".join(f"{r.name}={w:g}" for r, w in rewards) + ")"
    return Reward(name, score, True, lambda s: np.clip(s / total, 0.0, 1.0))


# ---------------------------------------------------------------- by name, for build_reward
_NAMED = {
    "chrf": lambda lc: chrf_reward(lowercase=lc),
    "chrf++": lambda lc: chrf_reward(word_order=2, lowercase=lc),
    "bleu": lambda lc: bleu_reward(lowercase=lc),
}
_NAMES = ", ".join(f"{n}, {n}-lc" for n in _NAMED)


def generation_reward(spec: str, key: str = "rest.reward") -> Reward | None:
    """The Reward that `spec` names ('chrf', 'bleu-lc', 'weighted:chrf=0.7,bleu=0.3', ...), or
    None when `spec` is not a generation reward. A malformed 'weighted:' spec raises ConfigError."""
    if not isinstance(spec, str):
        return None
    if spec.startswith("weighted:"):
        parts = [_weighted_part(part, spec, key) for part in spec.removeprefix("weighted:").split(",")]
        if sum(w for _, w in parts) <= 0:
            raise ConfigError(key, f"the weights in {spec!r} sum to 0")
        return weighted_sum(parts)
    return _named(spec)


def _named(name: str) -> Reward | None:
    base, lowercase = (name[:-3], True) if name.endswith("-lc") else (name, False)
    return _NAMED[base](lowercase) if base in _NAMED else None


def _weighted_part(part: str, spec: str, key: str) -> tuple[Reward, float]:
    name, equals, weight = part.strip().partition("=")
    reward = _named(name.strip())
    if reward is None:
        raise ConfigError(key, f"unknown reward {name.strip()!r} in {spec!r}: weighted sums take {_NAMES}")
    try:
        value = float(weight) if equals else float("nan")
    except ValueError:
        value = float("nan")
    if not math.isfinite(value) or value < 0:
        raise ConfigError(key, f"{part.strip()!r} in {spec!r} is not NAME=WEIGHT with a weight >= 0")
    return reward, value


# ---------------------------------------------------------------- corpus level, for evaluation
def corpus_bleu(hyps: Sequence[str], refs: Sequence[str], lowercase: bool = False, tokenize: str = "13a") -> float:
    """Corpus BLEU (0-100) of `hyps` against one reference each, sacrebleu's standard settings."""
    _check_lengths(hyps, refs)
    return float(_corpus_scorer("bleu", lowercase, tokenize=tokenize).corpus_score(list(hyps), [list(refs)]).score)


def corpus_chrf(hyps: Sequence[str], refs: Sequence[str], lowercase: bool = False, word_order: int = 0) -> float:
    """Corpus chrF (0-100; word_order=2: chrF++) of `hyps` against one reference each."""
    _check_lengths(hyps, refs)
    return float(_corpus_scorer("chrf", lowercase, word_order=word_order).corpus_score(list(hyps), [list(refs)]).score)


def _corpus_scorer(metric: str, lowercase: bool, tokenize: str = "13a", word_order: int = 0):
    if metric == "bleu":
        return BLEU(lowercase=lowercase, tokenize=tokenize)
    if metric == "chrf":
        return CHRF(word_order=word_order, lowercase=lowercase)
    raise ValueError(f"corpus metric: 'bleu' or 'chrf', not {metric!r}")


def corpus_metric_of_rows(hyps: Sequence[str], refs: Sequence[str], metric: str = "bleu", lowercase: bool = False):
    """`rows -> corpus_bleu (or corpus_chrf) of those rows` for bootstrap resamples (repeats allowed): each
    sentence's sufficient statistics are extracted once and a resample's score is computed from their sum, as
    sacrebleu's own paired bootstrap does, instead of tokenising every sentence again for every resample."""
    _check_lengths(hyps, refs)
    scorer = _corpus_scorer(metric, lowercase)
    stats = np.asarray(scorer._extract_corpus_statistics(list(hyps), [list(refs)]))
    return lambda rows: float(scorer._compute_score_from_stats(stats[np.asarray(rows, dtype=int)].sum(0)).score)


# ---------------------------------------------------------------- plumbing
def _percent_to_unit(scores: np.ndarray) -> np.ndarray:
    # sacrebleu can return 100.00000000000004 for a perfect match
    return np.clip(np.asarray(scores, dtype=np.float64) / 100.0, 0.0, 1.0)


def _pairs(examples: Sequence[Example], outputs: Sequence[str]) -> list[tuple[str, list[str]]]:
    """(hypothesis, [reference]) per pair; a target may also be a list of references."""
    if len(examples) != len(outputs):
        raise ValueError(f"{len(examples)} examples but {len(outputs)} outputs")
    pairs = []
    for example, output in zip(examples, outputs):
        if example.target is None:
            raise RestlmError(f"example {example.uid or example.text[:40]!r} has no target to score against")
        if not isinstance(output, str):
            raise TypeError(f"generation rewards score strings, not {type(output).__name__} ({output!r})")
        refs = [example.target] if isinstance(example.target, str) else list(example.target)
        pairs.append((output, refs))
    return pairs


def _check_lengths(hyps: Sequence[str], refs: Sequence[str]) -> None:
    if isinstance(refs, str) or isinstance(hyps, str):
        raise TypeError("pass lists of sentences, not one string")
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} references")
