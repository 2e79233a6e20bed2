"""Verifiable arithmetic, fully offline: integer expressions ("What is 17 + 8 * 3?") and templated
word problems, generated from a seed, checked by the exact-answer rewards (`rewards/answers.py`).

    task: arithmetic
    model: {name: smollm2}
    arithmetic: {levels: [1, 2], train_size: 1000}
    rest: {reward: exact_answer}

A level sets the number of operations and the operand size (LEVELS). Each split draws from its own
seed, and a problem text another split already holds is drawn again, so no text is in two splits.
An example's `target` is a short worked solution ending "Answer: N" (what SFT teaches), its
meta["answer"] the number. Every step decodes dev and test greedily: `dev_exact_strict` (the
answer in the asked format) selects; held-out strict is the proxy and held-out lenient (the right
number, whatever the format) the gold of `restlm compare`. `rest.reward` left at the classifier
default 'nll' means exact_answer here.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from restlm.data.examples import Example
from restlm.errors import ConfigError
from restlm.policies.base import Policy, TrainItem
from restlm.rewards import build_reward
from restlm.tasks.base import Task, register_task


@dataclass(frozen=True)
class Level:
    operations: int
    """operations per problem"""
    largest: int
    """largest operand of + and -"""
    largest_factor: int
    """largest operand of *"""
    parentheses: bool
    """whether an expression may group a sum or difference in parentheses"""


LEVELS = {1: Level(1, 20, 10, False), 2: Level(2, 30, 12, False), 3: Level(3, 50, 12, True),
          4: Level(4, 100, 20, True)}
SPLIT_ORDER = ("test", "dev", "train")  # held-out first, so it never loses a problem to train
NAMES = ["Ana", "Ben", "Chloe", "David", "Emma", "Farid", "Grace", "Hugo", "Ines", "Jonas", "Kira", "Liam"]
ITEMS = ["apples", "marbles", "stickers", "books", "coins", "pencils", "cards", "shells", "stamps", "cookies"]
MORE = ["{p} buys {n} more.", "{p} finds {n} more.", "A friend gives {o} {n} more."]
LESS = ["{p} gives {n} to a friend.", "{p} loses {n}.", "{p} sells {n}."]


# ---------------------------------------------------------------- the generator
def generate(seed: int, split: str, size: int, levels: list[int], word_share: float, taken: set[str]) -> list[Example]:
    """`size` distinct problems of `split` at `levels`, none of whose texts is in `taken` (updated)."""
    rng = random.Random(f"arithmetic:{seed}:{split}")  # a string seed: the same problems on every Python
    examples, tries = [], 0
    while len(examples) < size:
        tries += 1
        if tries > 50 * size + 1000:
            raise ConfigError(f"arithmetic.{split}_size", f"only {len(examples)} distinct {split} problems at levels "
                              f"{levels}; ask for fewer, or add a level")
        level = rng.choice(levels)
        word = rng.random() < word_share
        text, steps, answer = (word_problem if word else expression)(rng, LEVELS[level])
        if text in taken:
            continue
        taken.add(text)
        target = "\n".join([*steps, f"Answer: {answer}"])
        examples.append(Example(text=text, target=target, uid=f"{split}-{len(examples)}",
                                meta={"answer": answer, "level": level, "kind": "word" if word else "expression"}))
    return examples


def expression(rng: random.Random, level: Level) -> tuple[str, list[str], int]:
    """'What is 17 + 8 * 3?', its steps in precedence order, its value."""
    ops = [rng.choice("+-*") for _ in range(level.operations)]
    terms = [_operand(rng, level, ops, i) for i in range(len(ops) + 1)]
    group = None
    if level.parentheses and rng.random() < 0.5:
        sums = [i for i, op in enumerate(ops) if op != "*"]
        if sums:
            group = rng.choice(sums)
            if ops[group] == "-" and terms[group] < terms[group + 1]:  # keep the grouped part >= 0
                terms[group], terms[group + 1] = terms[group + 1], terms[group]
    words = [str(terms[0])]
    for i, op in enumerate(ops):
        words += [op, str(terms[i + 1])]
    if group is not None:
        words[2 * group] = "(" + words[2 * group]
        words[2 * group + 2] += ")"
    steps, value = _reduce(list(terms), list(ops), group)
    return f"What is {' '.join(words)}?", steps, value


def _operand(rng: random.Random, level: Level, ops: list[str], i: int) -> int:
    times = (i > 0 and ops[i - 1] == "*") or (i < len(ops) and ops[i] == "*")
    return rng.randint(2, level.largest_factor) if times else rng.randint(1, level.largest)


def _reduce(terms: list[int], ops: list[str], group: int | None) -> tuple[list[str], int]:
    """The worked steps ('8 * 3 = 24') of the parenthesised pair first, then *, then + and - left to right."""
    steps = []

    def apply(i: int) -> None:
        a, op, b = terms[i], ops[i], terms[i + 1]
        value = a + b if op == "+" else a - b if op == "-" else a * b
        steps.append(f"{a} {op} {b} = {value}")
        terms[i : i + 2], ops[i : i + 1] = [value], []

    if group is not None:
        apply(group)
    while "*" in ops:
        apply(ops.index("*"))
    while ops:
        apply(0)
    return steps, terms[0]


def word_problem(rng: random.Random, level: Level) -> tuple[str, list[str], int]:
    """'Ana has 12 apples. She buys 7 more. How many apples does Ana have now?', its steps, its value."""
    name, items = rng.choice(NAMES), rng.choice(ITEMS)
    pronoun, objective = ("She", "her") if name in NAMES[::2] else ("He", "him")  # NAMES alternate she, he
    steps, left = [], level.operations
    if rng.random() < 0.4:  # start with a product
        bags, each = rng.randint(2, level.largest_factor), rng.randint(2, level.largest_factor)
        value, left = bags * each, left - 1
        sentences = [f"{name} buys {bags} bags with {each} {items} in each."]
        steps.append(f"{bags} * {each} = {value}")
    else:
        value = rng.randint(level.largest // 2, level.largest)
        sentences = [f"{name} has {value} {items}."]
    for _ in range(left):
        if rng.random() < 0.5 and value > 1:
            amount = rng.randint(1, min(level.largest, value - 1))  # never below one: the story stays possible
            template, new = rng.choice(LESS), value - amount
            steps.append(f"{value} - {amount} = {new}")
        else:
            amount = rng.randint(1, level.largest)
            template, new = rng.choice(MORE), value + amount
            steps.append(f"{value} + {amount} = {new}")
        sentences.append(template.format(p=pronoun, o=objective, n=amount))
        value = new
    sentences.append(f"How many {items} does {name} have now?")
    return " ".join(sentences), steps, value


# ---------------------------------------------------------------- the task
@register_task("arithmetic")
class ArithmeticTask(Task):
    selection_metric = "dev_exact_strict"
    untrained_label = "pretrained, prompted (no fine-tuning)"
    sections = ("model", "train", "generation", "arithmetic", "baselines.untrained_head")

    def __init__(self, config, accelerator):
        super().__init__(config, accelerator)
        if config.rest.reward == "nll":  # the classifier default: set here so that every method and the record agree
            config.rest.reward = "exact_answer"
        self.strict, self.lenient = build_reward("exact_answer"), build_reward("exact_answer_lenient")
        self.test: list[Example] = []

    def load_data(self) -> None:
        cfg, taken = self.config.arithmetic, set()
        drawn = {split: generate(cfg.seed, split, getattr(cfg, f"{split}_size"), cfg.levels, cfg.word_problems, taken)
                 for split in SPLIT_ORDER}
        self.train, self.dev, self.test = drawn["train"], drawn["dev"], drawn["test"]

    def splits(self) -> dict[str, list[Example]]:
        return {"train": self.train, "dev": self.dev, "test": self.test}

    def read_split(self, path: Path) -> list[Example]:
        """A table of problems ('problem' column) and their answers ('answer': a number or a worked solution)."""
        from restlm.data.prompts import read_prompt_table

        return read_prompt_table(path, "problem", "answer")

    def score_only(self, examples: list[Example]) -> None:
        self.dev, self.test = [], examples

    def data_name(self) -> str:
        cfg = self.config.arithmetic
        return f"arithmetic (levels {', '.join(map(str, cfg.levels))}, seed {cfg.seed})"

    def new_policy(self, seed: int) -> Policy:
        return self.generative_policy(seed, self.config.arithmetic)

    def sft_items(self) -> list[TrainItem]:
        return [TrainItem(e, e.target) for e in self.train]

    def check_rest(self, rest, policy: Policy) -> None:
        super().check_rest(rest, policy)
        if rest.reward == "correct":
            raise ConfigError("rest.reward", "'correct' is a classifier's reward; use exact_answer or exact_answer_lenient")

    def evaluate(self, policy: Policy) -> dict:
        sets = {name: examples for name, examples in (("dev", self.dev), ("test", self.test)) if examples}
        decoded, speed = self.decode_greedy(policy, sets)
        metrics = {}
        for name, examples in sets.items():
            outputs = decoded[name]
            metrics[f"{name}_exact_strict"] = self._rate(self.strict, policy, examples, outputs)
            metrics[f"{name}_exact_lenient"] = self._rate(self.lenient, policy, examples, outputs)
        return {**metrics, **speed}

    def score_dev(self, policy: Policy, outputs: list) -> float:
        return self._rate(self.strict, policy, self.dev, outputs)

    @staticmethod
    def _rate(reward, policy: Policy, examples: list[Example], outputs: list) -> float:
        return float(np.mean(reward(policy, examples, outputs)))

    def compare_keys(self) -> tuple[str, str, str]:
        return "dev_exact_strict", "test_exact_strict", "test_exact_lenient"

    def heldout(self) -> list[Example]:
        return self.test

    def gold_scores(self, policy: Policy, examples: list[Example], outputs: list) -> list[float]:
        return [float(s) for s in self.lenient(policy, examples, outputs)]

    def guard(self) -> tuple[str, str]:
        return "test_exact_strict", "test_exact_lenient"

    def metric_columns(self) -> list[tuple[str, str]]:
        return [("dev_exact_strict", "dev exact (strict)"), ("dev_exact_lenient", "dev exact (lenient)"),
                ("test_exact_strict", "test exact (strict)"), ("test_exact_lenient", "test exact (lenient)")]
