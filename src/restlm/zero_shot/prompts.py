"""The zero-shot question: the prompt, its checks, and the Yes/No answers every backend reads."""
from __future__ import annotations

import string
from typing import Protocol

from restlm.data.examples import Example
from restlm.errors import ConfigError, RestlmError

DEFAULT_PROMPT = (
    "Are the following two sentences paraphrases of each other? "
    "Sentence 1: {sentence1} Sentence 2: {sentence2}. Answer with 'Yes' or 'No'."
)
# Single-token spellings of each answer; their probabilities are summed. With a chat template
# the answer starts right after "assistant\n" (no space), without one after "Answer:" (space),
# so both spellings count, and lower case too since small models often answer "yes".
YES_VARIANTS = ("Yes", " Yes", "yes", " yes")
NO_VARIANTS = ("No", " No", "no", " no")
# Appended when the model has no chat template, so the next token is the answer.
PLAIN_ANSWER_CUE = "\nAnswer:"


class ZeroShotClassifier(Protocol):
    """What every zero-shot backend offers."""

    unparsed: int
    """how many replies of the last `predict` were neither yes nor no (always 0 for 'local')"""
    unparsed_fraction: float
    """that count as a share of the last `predict`'s examples"""

    def predict(self, examples: list[Example]) -> list[int]:
        """Sentence pairs in, one label per pair out: 1 = paraphrase ("Yes"), 0 = not."""
        ...


def check_prompt(prompt: str) -> str:
    """Return `prompt` if it is a format string using only {sentence1} and {sentence2}."""
    try:
        fields = {field for _, field, _, _ in string.Formatter().parse(prompt) if field is not None}
        prompt.format(sentence1="", sentence2="")
        if fields - {"sentence1", "sentence2"}:
            raise KeyError(", ".join(sorted(fields - {"sentence1", "sentence2"})))
    except Exception as exc:  # noqa: BLE001 - any failure of str.format is a bad prompt
        raise ConfigError("baselines.zero_shot.prompt",
                          f"must be a format string with only {{sentence1}} and {{sentence2}} "
                          f"({type(exc).__name__}: {' '.join(str(exc).split())})") from None
    return prompt


def fill_prompt(prompt: str, example: Example) -> str:
    """The prompt with the example's two sentences filled in."""
    if example.text_pair is None:
        raise RestlmError(f"zero-shot needs sentence pairs; example '{example.uid}' has no text_pair")
    return prompt.format(sentence1=example.text, sentence2=example.text_pair)
