"""What an experiment needs from a task: data, a fresh policy, an evaluator, baselines.

`Experiment` runs the same stages (baselines, fine-tuning, ReST trajectories) for every task;
a task decides what a policy is, what its data look like and how a step is scored.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

from restlm.atomic_files import fingerprint
from restlm.config import ExperimentConfig
from restlm.data.examples import Example
from restlm.errors import ConfigError
from restlm.policies.base import Policy, TrainItem
from restlm.runs import RunDir

TASKS: dict[str, type[Task]] = {}
"""every registered task class by its config name (`task: NAME`)"""


def register_task(name: str):
    """Class decorator: make a Task subclass the task of `task: NAME` in a config."""
    def register(cls):
        if name in TASKS and TASKS[name] is not cls:
            raise ValueError(f"task {name!r} is registered twice ({TASKS[name].__name__}, {cls.__name__})")
        TASKS[name] = cls
        return cls

    return register


class Task(ABC):
    """One task of `Experiment`: load data, build policies, evaluate them, run baselines."""

    selection_metric: str
    """the evaluate() key (higher is better) that picks the best step and drives early stopping"""
    untrained_label: str = "untrained"
    """the report's name for the policy before fine-tuning"""
    sections: tuple[str, ...] | None = None
    """the config sections the task reads (its policy's included); the method's and `run` are added to them.
    None: not declared, so `restlm config` and the report show every section"""

    def __init__(self, config: ExperimentConfig, accelerator):
        self.config, self.accelerator = config, accelerator
        self.train: list[Example] = []
        self.dev: list[Example] = []

    def check_rest(self, rest, policy: Policy) -> None:
        """Raise ConfigError (naming `rest.*`) for a `rest` section this task cannot run: the config's own, and
        each compared variant's (`restlm compare` checks those before anything is written)."""
        from restlm.rest import check_rest_config

        check_rest_config(rest, policy)

    @abstractmethod
    def load_data(self) -> None:
        """Read every split the task uses (bad files raise DataError) into self.train, self.dev, ..."""

    @abstractmethod
    def new_policy(self, seed: int) -> Policy:
        """A fresh policy from the configured pretrained model (new heads drawn from `seed`)."""

    @abstractmethod
    def evaluate(self, policy: Policy) -> dict:
        """Metrics of `policy` on the held-out data, flat {name: float}; includes selection_metric."""

    def selection_score(self, policy: Policy) -> float:
        """The selection metric alone, asked after every epoch by early stopping: from the greedy dev outputs
        alone when the task scores them (`score_dev`), else from a whole evaluate()."""
        if type(self).score_dev is Task.score_dev:
            return self.evaluate(policy)[self.selection_metric]
        return self.score_dev(policy, self.decode_greedy(policy, {"dev": self.dev})[0]["dev"])

    def score_dev(self, policy: Policy, outputs: list) -> float:
        """The selection metric of `outputs`, the greedy outputs on dev: evaluate() reports it through this too,
        and a generative task that defines it spares early stopping the decoding of the held-out sets."""
        raise NotImplementedError

    def generative_policy(self, seed: int, section) -> Policy:
        """A causal or seq2seq policy of the configured model, prompted as `section` (prompt, system_prompt,
        max_new_tokens) says: the policy of every generative task."""
        from accelerate.utils import set_seed

        from restlm.policies.generative_loading import load_generative_policy
        from restlm.policies.lora import lora_of_rank

        set_seed(seed)
        model = self.config.model
        lora = lora_of_rank(model.lora_rank)
        policy = load_generative_policy(model.name, self.accelerator, lora=lora, prompt_template=section.prompt,
                                        system_prompt=section.system_prompt, max_length=model.max_length,
                                        max_new_tokens=section.max_new_tokens,
                                        batch_size=self.config.train.eval_batch_size)
        policy.use_engine(self.config.generation)
        return policy

    def decode_greedy(self, policy: Policy, sets: dict[str, list[Example]]) -> tuple[dict[str, list[str]], dict]:
        """The greedy output of every example of every named set, by set; and the engine's speed over all of
        them for the step's record (eval_tokens_per_s, eval_s).

        Each set is decoded in a call of its own: batched greedy decoding is not batch-invariant (padding
        changes the sums, int8 most of all), so a set decoded beside another could give outputs that a later
        decode of that set alone (compare's final held-out evaluation) does not reproduce.
        """
        by_set, tokens, seconds = {}, 0, 0.0
        for name, examples in sets.items():
            by_set[name] = [outputs[0] for outputs in policy.sample(examples, greedy=True)]
            generation = getattr(policy, "last_generation", {})
            tokens, seconds = tokens + (generation.get("tokens") or 0), seconds + (generation.get("seconds") or 0.0)
        if not seconds:
            return by_set, {"eval_tokens_per_s": None, "eval_s": None}
        return by_set, {"eval_tokens_per_s": tokens / seconds, "eval_s": seconds}

    def splits(self) -> dict[str, list[Example]]:
        """Every split the task read, by name (the inputs a resumed run must find unchanged)."""
        return {"train": self.train, "dev": self.dev}

    def input_fingerprints(self) -> dict[str, dict]:
        """{split: {"sha256", "rows", "source"}} of the content the run reads, for `RunDir.check_inputs`."""
        prints = {}
        for name, examples in self.splits().items():
            files = sorted({e.meta["path"] for e in examples if "path" in e.meta})
            prints[name] = {"sha256": fingerprint([[e.text, e.text_pair, e.label, e.target] for e in examples]),
                            "rows": len(examples), "source": ", ".join(files) or f"the {name} split"}
        return prints

    def check(self, run: RunDir, policy: Policy) -> None:
        """Raise ConfigError for what the config asks and this task cannot do, before a file is written.

        `policy` is the first policy, built: checks that need the model (its kind, its positions) use it.
        """
        self.check_rest(self.config.rest, policy)
        model = getattr(policy.model, "module", policy.model)  # under DDP, the model inside
        positions = getattr(getattr(model, "config", None), "max_position_embeddings", None)
        if isinstance(positions, int) and self.config.model.max_length > positions:
            raise ConfigError("model.max_length", f"{self.config.model.max_length} is beyond the {positions} positions "
                              f"of {self.config.model.name}")

    @abstractmethod
    def read_split(self, path: Path) -> list[Example]:
        """A file of the task's examples in the task's own format (for `restlm evaluate --split`)."""

    def score_only(self, examples: list[Example]) -> None:
        """Make `examples` the only set evaluate() scores (as dev)."""
        self.dev = examples

    def data_name(self) -> str:
        """What the report's title calls the data."""
        data = self.config.data
        return data.path if data.source == "glue_folder" else data.source

    def baselines(self, run: RunDir) -> None:
        """Record the seed-free baseline stages (none by default)."""

    def sft_items(self) -> list[TrainItem]:
        """Supervised fine-tuning data (G0I0): every training input with its gold output."""
        return [TrainItem(e, e.label if e.label is not None else e.target) for e in self.train]

    def guard(self) -> tuple[str, str] | None:
        """(reward metric, held-out metric) the report sets side by side, or None."""
        return None

    def metric_columns(self) -> list[tuple[str, str]]:
        """[(evaluate() key, column title)] of the report's metrics-by-step table."""
        return [(self.selection_metric, self.selection_metric)]

    def stage_line_metrics(self) -> tuple[str, ...]:
        """The evaluate() keys each stage's log line shows (the report's columns, the selection metric first)."""
        return tuple(dict.fromkeys([self.selection_metric, *(key for key, _ in self.metric_columns())]))

    # ---- what `restlm compare` reads: a held-out set, its proxy and its gold
    def proxy_reward(self, spec: str | None = None):
        """The reward every method optimises: `rest.reward` (or `spec`, a variant's), as written; a method
        normalises it as it needs."""
        from restlm.rewards import build_reward

        return build_reward(spec or self.config.rest.reward)

    def compare_keys(self) -> tuple[str, str, str]:
        """(dev selection metric, held-out proxy, held-out gold): keys of evaluate() that compare reports."""
        raise ConfigError("task", f"'{self.config.task}' cannot be compared yet: it has no held-out proxy and gold")

    def heldout(self) -> list[Example]:
        """The held-out inputs every method is scored on (never used for selection)."""
        raise ConfigError("task", f"'{self.config.task}' has no held-out set to compare methods on")

    def other_heldout(self) -> dict[str, list[Example]]:
        """Other held-out sets (out-of-domain) whose greedy outputs compare's final evaluation keeps too, by name."""
        return {}

    def other_gold_of_rows(self, split: str, examples: list[Example], outputs: list):
        """rows -> the gold of those rows of `other_heldout()[split]` (for bootstraps), scored as evaluate() does."""
        raise NotImplementedError(f"{type(self).__name__} has no other held-out sets")

    def gold_scores(self, policy: Policy, examples: list[Example], outputs: list) -> list[float] | None:
        """The gold of each held-out output, when the gold is a mean over outputs (None: a corpus metric)."""
        return None

    def gold_of_rows(self, examples: list[Example], outputs: list, scores: list[float] | None):
        """rows -> the gold of those held-out rows (for bootstraps): the mean of `scores` by default."""
        import numpy as np

        values = np.asarray(scores, dtype=float)
        return lambda rows: float(values[rows].mean())
