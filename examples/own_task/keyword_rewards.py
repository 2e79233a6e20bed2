"""A user's own rewards for examples/own_task: plain functions f(examples, outputs) -> scores.

`rest.reward: keyword_rewards:uses_keyword` is the proxy ReST optimises; `prompts.gold:
keyword_rewards:one_short_sentence` is a stricter judge it never sees, scored on the test prompts.
Each example carries the row's extra columns in `example.meta` (here `keyword`).
"""
import re


def uses_keyword(examples, outputs):
    """1 when the output holds the row's keyword (any case, inside a word too), less 0.02 per word past 20."""
    scores = []
    for example, output in zip(examples, outputs):
        hit = example.meta["keyword"].lower() in output.lower()
        scores.append(max(0.0, float(hit) - 0.02 * max(0, len(output.split()) - 20)))
    return scores


def one_short_sentence(examples, outputs):
    """1 for exactly one sentence of at most 20 words holding the keyword as a whole word, else 0."""
    scores = []
    for example, output in zip(examples, outputs):
        text = output.strip()
        sentences = [s for s in re.split(r"(?<=[.!?])\s+", text) if s]
        whole_word = re.search(rf"\b{re.escape(example.meta['keyword'])}\b", text, re.IGNORECASE) is not None
        scores.append(float(len(sentences) == 1 and len(text.split()) <= 20 and whole_word))
    return scores
