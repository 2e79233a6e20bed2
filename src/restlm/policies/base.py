"""The policy interface: what ReST, PPO and the evaluators need from any kind of model.

A classifier, a seq2seq and a causal language model each implement it in one file; nothing
else in restlm asks which kind it holds.
"""
from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from restlm.data.examples import Example


@dataclass(frozen=True)
class TrainItem:
    """One training example of an offline loss: an input, an output for it, and a weight."""

    example: Example
    output: Any
    weight: float = 1.0
    ref_log_prob: float | None = None  # log p_ref(output | input), for losses with a reference (BVMPO)


class Policy(ABC):
    """A model that maps inputs to outputs and can be trained on (input, output, weight).

    Outputs are class indices for a classifier and strings for generative policies.
    `self.model` may be wrapped by accelerate (DDP); `self.unwrapped` is the bare model.
    """

    def __init__(self, model, tokenizer, accelerator):
        self.accelerator = accelerator
        self.model = accelerator.prepare(model)
        self.tokenizer = tokenizer

    @property
    def unwrapped(self):
        return self.accelerator.unwrap_model(self.model)

    # ---- what each policy kind implements
    @abstractmethod
    def sample(self, examples: Sequence[Example], k: int, temperature: float, greedy: bool, seed: int) -> list[list[Any]]:
        """K outputs per input (greedy: the single most likely one), reproducible for a seed."""

    @abstractmethod
    def log_probs(self, examples: Sequence[Example], outputs: Sequence[Any]) -> np.ndarray:
        """log p(output | input) for each pair, without gradients."""

    @abstractmethod
    def collate(self, items: Sequence[TrainItem]) -> dict:
        """A padded batch of tensors for `output_log_probs`, with a 'weights' entry."""

    @abstractmethod
    def output_log_probs(self, batch: dict) -> torch.Tensor:
        """Differentiable log p(output | input), one value per item of the batch."""

    def output_token_log_probs(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Differentiable per-token log-probs of the outputs and their mask; a label is one token."""
        return self.output_log_probs(batch), None

    @abstractmethod
    def input_length(self, example: Example) -> int:
        """A cheap length of an input, for sorting batches by length."""

    # ---- shared
    def save(self, path: Path) -> None:
        """Write the model and tokenizer in HF format (safetensors), atomically."""
        from restlm.runs import replace_folder

        if self.accelerator.is_main_process:
            require_finite_weights(self.unwrapped, path)
            replace_folder(Path(path), self._write_weights)
        self.accelerator.wait_for_everyone()

    def _write_weights(self, folder: Path) -> None:
        self.unwrapped.save_pretrained(folder, safe_serialization=True)
        self.tokenizer.save_pretrained(folder)

    def load_weights(self, path: Path) -> None:
        """Restore weights saved by `save` (used when a run resumes)."""
        from safetensors.torch import load_file

        state = load_file(str(Path(path) / "model.safetensors"))
        missing, unexpected = self.unwrapped.load_state_dict(state, strict=False)
        # tied weights (e.g. embeddings) are saved once; anything else missing is an error
        if unexpected or any("embed" not in k and "lm_head" not in k for k in missing):
            raise RuntimeError(f"checkpoint {path} does not match the model: missing {missing}, unexpected {unexpected}")

    def frozen_copy(self, weights: Path | None = None) -> "Policy":
        """This policy around a frozen copy of its bare model, with the weights `save` wrote to
        `weights` when given: a reference (e.g. for a KL) that training this policy leaves alone.

        Costs one more model in memory; it shares the tokenizer and the accelerator.
        """
        reference = copy.copy(self)
        reference.model = copy.deepcopy(self.unwrapped).requires_grad_(False).eval()
        if weights is not None:
            reference.load_weights(weights)
        return reference


def require_finite_weights(model, where) -> None:
    """NonFiniteError when a weight is NaN or infinite: such a model is never saved (`where` names it)."""
    from restlm.errors import NonFiniteError

    bad = next((name for name, value in model.state_dict().items()
                if value.is_floating_point() and not torch.isfinite(value).all()), None)
    if bad is not None:
        raise NonFiniteError(f"{where}: weight '{bad}' is not finite (NaN or inf), so the model was not saved; "
                             "lower the learning rate")
