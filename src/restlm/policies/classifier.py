"""A classifier policy around any AutoModelForSequenceClassification (single sentences or pairs).

Its outputs are labels; sampling draws a label from the softmax at a temperature (or takes the
argmax), and the offline loss is the (weighted) log-probability of a given label.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from transformers import DataCollatorWithPadding

from restlm.data.examples import Example
from restlm.distributed import map_across_processes
from restlm.policies.base import Policy, Samples, TrainItem
from restlm.policies.lora import LoraCheckpoints, apply_lora


PAIR_SEPARATOR = "\n"  # between the two texts of a pair, for tokenizers without a separator token


class ClassifierPolicy(LoraCheckpoints, Policy):
    """Policy over class labels. Supports sentence pairs (`text_pair`) and single sentences."""

    kind = "classifier"
    lora_task_type = "SEQ_CLS"

    def __init__(self, model, tokenizer, accelerator, max_length: int = 128, batch_size: int = 128):
        super().__init__(model, tokenizer, accelerator)
        self.max_length = max_length
        self.batch_size = batch_size
        self._pad = DataCollatorWithPadding(tokenizer)

    @classmethod
    def from_pretrained(cls, name: str, accelerator, num_labels: int = 2, lora: dict | None = None,
                        label_names: Sequence[str] | None = None, **kwargs) -> "ClassifierPolicy":
        """Load by short name, HF id or path; `lora` (peft options) trains adapters and the head only.
        `label_names` (one per class, in index order) become the saved config's id2label/label2id."""
        from restlm.models import load_classifier

        model, tokenizer = load_classifier(name, num_labels)
        if label_names is not None:
            if len(label_names) != num_labels:
                raise ValueError(f"{len(label_names)} label names for {num_labels} labels: {list(label_names)}")
            model.config.id2label = dict(enumerate(map(str, label_names)))
            model.config.label2id = {str(n): i for i, n in enumerate(label_names)}
        return cls(apply_lora(model, lora, cls.lora_task_type), tokenizer, accelerator, **kwargs)

    # ---- encoding
    def _encode(self, examples: Sequence[Example]) -> list[dict]:
        texts, pairs = [e.text for e in examples], [e.text_pair for e in examples]
        if self.tokenizer.sep_token is None:
            # a decoder's tokenizer (SmolLM2, Llama) has no pair template and would glue the two texts together
            # ("sat.A cat"): one text, the pair on its own line
            texts = [t if p is None else f"{t}{PAIR_SEPARATOR}{p}" for t, p in zip(texts, pairs)]
            pairs = [None] * len(texts)
        encoded = self.tokenizer(
            texts,
            pairs if any(p is not None for p in pairs) else None,
            truncation=True,
            max_length=self.max_length,
        )
        return [{k: encoded[k][i] for k in encoded} for i in range(len(examples))]

    def input_length(self, example: Example) -> int:
        return len(example.text) + len(example.text_pair or "")

    @torch.no_grad()
    def _logits(self, examples: Sequence[Example]) -> torch.Tensor:
        """Logits for all examples, batched by length; runs on this process only."""
        self.model.eval()
        order = sorted(range(len(examples)), key=lambda i: self.input_length(examples[i]))
        out = torch.empty(len(examples), self.unwrapped.config.num_labels)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            batch = self._pad(self._encode([examples[i] for i in idx]))
            batch = {k: v.to(self.accelerator.device) for k, v in batch.items()}
            out[idx] = self.unwrapped(**batch).logits.float().cpu()
        return out

    def logits(self, examples: Sequence[Example]) -> torch.Tensor:
        """Logits for all examples, the work split across processes."""
        rows = map_across_processes(self.accelerator, list(examples), lambda part: self._logits(part).tolist())
        return torch.tensor(rows).reshape(len(examples), -1)

    # ---- the policy interface
    def predict(self, examples: Sequence[Example]) -> list[int]:
        return self.logits(examples).argmax(-1).tolist()

    def sample(self, examples, k=1, temperature=1.0, greedy=False, seed=0, top_p=1.0) -> list[list[int]]:
        """K labels per input drawn from softmax(logits / temperature); top_p is ignored (two labels)."""
        logits = self.logits(examples)
        if greedy:
            return [[label] for label in logits.argmax(-1).tolist()]
        probs = torch.softmax(logits / temperature, dim=-1)
        samples = []
        for i, row in enumerate(probs):
            # one generator per input: the draw does not depend on batching or process count
            generator = torch.Generator().manual_seed(seed * 1_000_003 + i)
            samples.append(torch.multinomial(row, k, replacement=True, generator=generator).tolist())
        return samples

    def log_probs(self, examples, outputs) -> np.ndarray:
        log_softmax = torch.log_softmax(self.logits(examples), dim=-1)
        return log_softmax[torch.arange(len(examples)), torch.tensor(list(outputs))].numpy()

    def collate(self, items: Sequence[TrainItem]) -> dict:
        batch = self._pad(self._encode([item.example for item in items]))
        batch["labels"] = torch.tensor([int(item.output) for item in items])
        batch["weights"] = torch.tensor([float(item.weight) for item in items])
        return batch

    def output_log_probs(self, batch: dict) -> torch.Tensor:
        inputs = {k: v for k, v in batch.items() if k not in ("labels", "weights")}
        logits = self.model(**inputs).logits
        return torch.log_softmax(logits.float(), dim=-1).gather(1, batch["labels"][:, None]).squeeze(1)

    # ---- online RL: a label is a one-token output
    def rollouts(self, examples, k, temperature, top_p, max_new_tokens, seed) -> Samples:
        """K labels per input drawn as `sample` draws them (max_new_tokens and top_p do not apply)."""
        samples = Samples(max_output_tokens=1)
        for example, labels in zip(examples, self.sample(examples, k, temperature, seed=seed)):
            for label in labels:
                samples.examples.append(example)
                samples.prompt_ids.append([])
                samples.output_ids.append([label])
                samples.outputs.append(label)
        return samples

    def rollout_batch(self, samples: Samples) -> dict:
        batch = self._pad(self._encode(samples.examples))
        batch["labels"] = torch.tensor([ids[0] for ids in samples.output_ids])
        return dict(batch)

    def rollout_logits(self, model, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
        return logits[:, None, :], batch["labels"][:, None]
