"""Translation with a generative policy (the ReST paper's testbed): Multi30k German to English.

Fine-tuning and Grow use the train split; the dev split (Multi30k val) selects steps; each step
is also scored on the test splits (test_2016_flickr) and on IWSLT14 valid, out of domain. Every
set is decoded greedily. Metrics, per set: corpus BLEU and chrF (sacrebleu); on dev also the
mean training reward of the decoded sentences (`dev_reward`), which selects the best step.
"""
from __future__ import annotations

from pathlib import Path


from restlm.data.examples import Example
from restlm.errors import ConfigError
from restlm.data.location import data_root
from restlm.data.parallel import MULTI30K_SPLITS, load_iwslt14_valid, load_multi30k, read_parallel
from restlm.policies.base import Policy
from restlm.rewards import build_reward
from restlm.rewards.generation import corpus_bleu, corpus_chrf, corpus_metric_of_rows
from restlm.tasks.base import Task, register_task

OUT_OF_DOMAIN = "iwslt"


@register_task("translation")
class TranslationTask(Task):
    selection_metric = "dev_reward"
    untrained_label = "pretrained, prompted (no fine-tuning)"
    sections = ("data", "model", "train", "generation", "translation", "baselines.untrained_head")

    def __init__(self, config, accelerator):
        super().__init__(config, accelerator)
        self.reward = build_reward(config.rest.reward, normalise=True)
        self.tests: dict[str, list[Example]] = {}
        self.out_of_domain: list[Example] = []

    # ---- data
    def load_data(self) -> None:
        data, cfg = self.config.data, self.config.translation
        root = data_root(data.root)
        self.train = self._split(root, data.train_split, data.limit)
        self.dev = self._split(root, data.dev_split, data.dev_limit)
        self.tests = {split: self._split(root, split, cfg.test_limit) for split in cfg.test_splits}
        if cfg.out_of_domain:
            # IWSLT14 here is tokenized and lower-cased: scored lower-cased, with Moses escapes undone
            self.out_of_domain = load_iwslt14_valid(root, cfg.source_lang, cfg.target_lang,
                                                    limit=cfg.out_of_domain_limit, unescape=True)

    def _split(self, root, split: str, limit: int | None) -> list[Example]:
        cfg = self.config.translation
        if self.config.data.path == "multi30k" and split in MULTI30K_SPLITS:
            return load_multi30k(root, split, cfg.source_lang, cfg.target_lang, limit)
        folder = root / self.config.data.path
        return read_parallel(folder / f"{split}.{cfg.source_lang}", folder / f"{split}.{cfg.target_lang}", limit)

    def splits(self) -> dict[str, list[Example]]:
        named = {"train": self.train, "dev": self.dev, **{f"test:{split}": e for split, e in self.tests.items()}}
        return {**named, OUT_OF_DOMAIN: self.out_of_domain} if self.out_of_domain else named

    def read_split(self, path: Path) -> list[Example]:
        """`path` is the source side (`X.de`); the references are beside it (`X.en`)."""
        cfg = self.config.translation
        return read_parallel(path, path.with_suffix(f".{cfg.target_lang}"))

    def score_only(self, examples: list[Example]) -> None:
        self.dev, self.tests, self.out_of_domain = examples, {}, []

    def data_name(self) -> str:
        return self.config.data.path

    # ---- policy
    def new_policy(self, seed: int) -> Policy:
        return self.generative_policy(seed, self.config.translation)

    # ---- evaluation
    def evaluate(self, policy: Policy) -> dict:
        sets = {"dev": self.dev, **{self._name(split): examples for split, examples in self.tests.items()}}
        if self.out_of_domain:
            sets[OUT_OF_DOMAIN] = self.out_of_domain
        decoded, speed = self.decode_greedy(policy, sets)
        metrics = {}
        for name, examples in sets.items():
            hyps, refs = decoded[name], [e.target for e in examples]
            lowercase = name == OUT_OF_DOMAIN
            metrics[f"{name}_bleu"] = corpus_bleu(hyps, refs, lowercase=lowercase)
            metrics[f"{name}_chrf"] = corpus_chrf(hyps, refs, lowercase=lowercase)
        metrics["dev_reward"] = self.score_dev(policy, decoded["dev"])
        if self.tests:  # the held-out proxy, for compare's proxy-against-gold picture
            split = self.config.translation.test_splits[0]
            metrics["test_reward"] = float(self.reward(policy, self.tests[split], decoded[self._name(split)]).mean())
        return {**metrics, **speed}

    def score_dev(self, policy: Policy, outputs: list) -> float:
        return float(self.reward(policy, self.dev, outputs).mean())

    # ---- compare: proxy and corpus BLEU (or chrF, the metric the reward is not) on the first test split
    def compare_keys(self) -> tuple[str, str, str]:
        if not self.tests:
            raise ConfigError("translation.test_splits", "restlm compare scores methods on a test split: name one")
        return "dev_reward", "test_reward", f"test_{self.guard()[1].removeprefix('dev_')}"

    def heldout(self) -> list[Example]:
        return self.tests[self.config.translation.test_splits[0]]

    def other_heldout(self) -> dict[str, list[Example]]:
        return {OUT_OF_DOMAIN: self.out_of_domain} if self.out_of_domain else {}

    def gold_of_rows(self, examples: list[Example], outputs: list, scores):
        return self._corpus_gold_of_rows(examples, outputs, lowercase=False)

    def other_gold_of_rows(self, split: str, examples: list[Example], outputs: list):
        return self._corpus_gold_of_rows(examples, outputs, lowercase=split == OUT_OF_DOMAIN)

    def _corpus_gold_of_rows(self, examples: list[Example], outputs: list, lowercase: bool):
        metric = "chrf" if self.compare_keys()[2].endswith("chrf") else "bleu"
        return corpus_metric_of_rows(outputs, [e.target for e in examples], metric, lowercase=lowercase)

    def _name(self, split: str) -> str:
        """The first test split reports as 'test_*'; others under their own names."""
        return "test" if split == self.config.translation.test_splits[0] else split

    def guard(self) -> tuple[str, str]:
        heldout = self.config.translation.heldout_metric
        if heldout is None:
            heldout = "chrf" if self.config.rest.reward.startswith("bleu") else "bleu"
        return "dev_reward", f"dev_{heldout}"

    def metric_columns(self) -> list[tuple[str, str]]:
        columns = [("dev_reward", "dev reward"), ("dev_bleu", "dev BLEU"), ("dev_chrf", "dev chrF")]
        for split in self.config.translation.test_splits:
            name = self._name(split)
            columns += [(f"{name}_bleu", f"{split} BLEU"), (f"{name}_chrf", f"{split} chrF")]
        if self.config.translation.out_of_domain:
            columns += [(f"{OUT_OF_DOMAIN}_bleu", "IWSLT14 BLEU"), (f"{OUT_OF_DOMAIN}_chrf", "IWSLT14 chrF")]
        return columns
