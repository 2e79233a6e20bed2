"""The policy interface: what ReST, PPO and the evaluators need from any kind of model.

A classifier, a seq2seq and a causal language model each implement it in one file; nothing
else in restlm asks which kind it holds.
"""
from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
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


@dataclass
class Samples:
    """K sampled outputs per prompt, prompt-major, with the exact tokens: what online RL (PPO, GRPO)
    trains on. A decoded string tokenized again can split differently, and its log-probs would then
    not be those of the sample; `Policy.rollout_batch` collates these tokens as they were drawn."""

    examples: list[Example] = field(default_factory=list)
    prompt_ids: list[list[int]] = field(default_factory=list)  # the policy's input ids ([] for a classifier)
    output_ids: list[list[int]] = field(default_factory=list)  # through the first EOS (none if the cap cut it); [label]
    outputs: list = field(default_factory=list)  # what a reward reads: the decoded strings, or the labels
    max_output_tokens: int = 1  # the cap the outputs were drawn under (Dr. GRPO's length constant)
    engine_mean_log_probs: list[float] | None = None  # the engine's own, when it is not the policy's model

    def take(self, rows) -> "Samples":
        """These rows, in this order."""
        rows = [int(i) for i in rows]
        pick = lambda values: [values[i] for i in rows]  # noqa: E731
        return Samples(pick(self.examples), pick(self.prompt_ids), pick(self.output_ids), pick(self.outputs),
                       self.max_output_tokens,
                       None if self.engine_mean_log_probs is None else pick(self.engine_mean_log_probs))


def token_log_probs(logits: torch.Tensor, labels: torch.Tensor, temperature: float = 1.0) -> dict:
    """The token pass of online RL, on aligned (logits [B, T, V], labels [B, T], -100 off the output):
    'log_probs' of the labels under softmax(logits / temperature) (0 off the mask), 'entropy' of that
    distribution (no gradient) and 'mask', each [B, T]."""
    mask = labels != -100
    log_softmax = torch.log_softmax(logits.float() / temperature, dim=-1)
    log_probs = log_softmax.gather(-1, labels.clamp_min(0).unsqueeze(-1)).squeeze(-1)
    with torch.no_grad():
        entropy = -(log_softmax.exp() * log_softmax).sum(-1)
    return {"log_probs": log_probs * mask, "entropy": entropy * mask, "mask": mask}


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

    # ---- what online RL (PPO, GRPO, RLOO) needs: samples with their tokens, and a token pass over them
    @abstractmethod
    def rollouts(self, examples: Sequence[Example], k: int, temperature: float, top_p: float,
                 max_new_tokens: int, seed: int) -> Samples:
        """K samples per example, prompt-major, keeping the tokens drawn (this process's share when several run)."""

    @abstractmethod
    def rollout_batch(self, samples: Samples) -> dict:
        """The tensors of these samples' exact tokens, for `rollout_logits`."""

    @abstractmethod
    def rollout_logits(self, model, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits [B, T, V], labels [B, T]) of `model` (the policy's, or a reference copy) on a rollout
        batch, aligned: logits[:, t] scores labels[:, t], which are -100 off the output tokens."""

    # ---- shared
    def save(self, path: Path) -> None:
        """Write the model and tokenizer in HF format (safetensors), atomically."""
        from restlm.atomic_files import replace_folder

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
