"""Exact-answer rewards of a numeric answer against the reference (`Example.target`), 1 or 0.

The reference may be a bare number ("42") or a worked solution whose last line holds it
("... = 42\\nAnswer: 42"); either way its answer is read as `final_answer` reads an output.
  exact_answer          strict: the output's last non-empty line is "Answer: N", N the right integer
  exact_answer_lenient  the last non-empty line's answer is right, whatever its format: a marked one
                        ("Answer: 42", "The answer is 42.", "#### 42", "\\boxed{42}"), else its last
                        number; "1,234" and "42.0" count as 1234 and 42
Lenient reads one number, not any number of the line: a reward that takes "40, 41 or 42" as right
is one that sampling-based training learns to game at once.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

from restlm.data.examples import Example
from restlm.errors import RestlmError
from restlm.rewards.base import Reward

# not after a letter, digit or dot: "10-3" is 10 minus 3, not 10 and -3; "1,234" whole, "42." without the dot
NUMBER = r"(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
STRICT = re.compile(r"Answer:[ \t]*(-?\d+)")
MARKED = [re.compile(pattern, re.IGNORECASE) for pattern in (
    r"\\boxed\{\s*(" + NUMBER + r")\s*\}", r"####\s*(" + NUMBER + ")",
    r"answer\s*(?:is|:|=)\s*\$?(" + NUMBER + ")")]


def last_line(text: str) -> str:
    """The last non-empty line of `text`, stripped ('' for none)."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[-1] if lines else ""


def parse_number(text: str) -> float | None:
    """'1,234' -> 1234.0, '-7' -> -7.0, '42.0' -> 42.0; None for anything that is not one number."""
    if not re.fullmatch(NUMBER, text.strip()):
        return None
    return float(text.strip().replace(",", ""))


def final_answer(text: str) -> float | None:
    """The answer of the last non-empty line: its marked answer (the last one), else its last number."""
    line = last_line(text)
    for pattern in MARKED:
        if found := pattern.findall(line):
            return parse_number(found[-1])
    numbers = re.findall(NUMBER, line)
    return parse_number(numbers[-1]) if numbers else None


def strict_answer(text: str) -> float | None:
    """N when the last non-empty line is exactly 'Answer: N' (N a plain integer), else None."""
    match = STRICT.fullmatch(last_line(text))
    return float(match.group(1)) if match else None


def exact_answer_reward(strict: bool = True) -> Reward:
    """1 where the output's answer (strict or lenient, see the module) equals the reference's, else 0."""
    read = strict_answer if strict else final_answer

    def score(policy, examples, outputs):
        return [float(read(output) is not None and read(output) == reference)
                for output, reference in zip(outputs, _references(examples, outputs))]

    return Reward("exact_answer" if strict else "exact_answer_lenient", score, True, lambda s: s)


def _references(examples: Sequence[Example], outputs: Sequence) -> list[float]:
    if len(examples) != len(outputs):
        raise ValueError(f"{len(examples)} examples but {len(outputs)} outputs")
    references = []
    for example in examples:
        reference = final_answer(example.target) if isinstance(example.target, str) else None
        if reference is None:
            raise RestlmError(f"example {example.uid or example.text[:40]!r} has no numeric target "
                              f"to score answers against (target {example.target!r})")
        references.append(reference)
    return references
