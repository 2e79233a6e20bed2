"""A scalar reward model r(prompt, response): a sequence classifier with one output.

Two backbones, told apart by the model's config (or by what a saved reward model recorded):
  encoder (MiniLM, BERT)   the text pair [CLS] prompt [SEP] response [SEP]
  causal  (SmolLM2, Llama) prompt + response as one sequence; the head reads its last token
Both keep the start of the response (at most 3/4 of `max_length` tokens) and fill the rest
of the window with the END of the prompt, so the last turns of a long dialogue survive.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from restlm.errors import ModelLoadError

KINDS = ("encoder", "causal")
SAVED_KEY = "restlm_reward"  # written into config.json: {"kind", "max_length"}
DEFAULT_MAX_LENGTH = 256


class RewardModel:
    """Wraps (model, tokenizer); `encode` + `forward` is the differentiable path, `score` the batched one.

    Several processes (`accelerate launch`): `train_reward_model` trains with DDP, `score` scores
    what this process is given, `save` writes from the main process. Not supported: multi-output heads.
    """

    def __init__(self, model, tokenizer, kind: str, max_length: int = DEFAULT_MAX_LENGTH):
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        self.model, self.tokenizer, self.kind, self.max_length = model, tokenizer, kind, int(max_length)
        if kind == "causal":
            if tokenizer.pad_token is None:
                tokenizer.pad_token = tokenizer.eos_token
            # the head reads the rightmost token that is not padding, so the model must know the pad id
            model.config.pad_token_id = tokenizer.pad_token_id
        else:
            tokenizer.truncation_side = "left"  # truncation="only_first" then cuts the START of the prompt
        self._specials = tokenizer("")["input_ids"]  # what the tokenizer adds to any text (BOS for Llama's)
        self._specials_pair = tokenizer.num_special_tokens_to_add(pair=True) if kind == "encoder" else len(self._specials)
        if self.max_length <= 4 * self._specials_pair:
            raise ValueError(f"max_length {self.max_length} leaves no room for text")

    @classmethod
    def from_pretrained(cls, name: str, lora: dict | None = None, max_length: int | None = None,
                        dtype: torch.dtype = torch.float32, device: str | None = None) -> RewardModel:
        """Load 'minilm', 'smollm2', a HF id or a local path (a base model gets a new one-output head).

        lora: None or `apply_lora`'s dict (adapters on the backbone, the head trained in full).
        max_length: tokens per (prompt, response); default what a saved reward model used, else 256.
        device: where it trains and scores; default the GPU when there is one, else the CPU, and
            under `accelerate launch` with several processes, this process's device.
        A folder a feature probe was saved to (config.json's SAVED_KEY names probe.json) loads as a
        FeatureProbe, at the max_length it was fitted with, and takes no `lora`.
        Raises ModelLoadError (one line) when it cannot be loaded or has more than one output.
        """
        from transformers import AutoConfig, AutoModelForSequenceClassification

        from restlm.models import checked_path, load_failure, load_pretrained
        from restlm.policies.lora import apply_lora

        path = checked_path(name)
        try:  # the config first: a classifier of several outputs is refused before its weights load
            config = AutoConfig.from_pretrained(path)
        except Exception as error:  # noqa: BLE001 - every loader failure becomes one line
            raise ModelLoadError(name, load_failure(path, error)) from None
        if _is_classifier(config) and config.num_labels != 1:
            raise ModelLoadError(name, f"a classifier with {config.num_labels} outputs, not a reward model (one output)")
        saved = getattr(config, SAVED_KEY, None) or {}
        kind = saved.get("kind") or ("causal" if _is_causal(config) else "encoder")
        # quiet: the 'newly initialised score head' report is expected, not news
        model, tokenizer = load_pretrained(name, AutoModelForSequenceClassification, quiet=True, num_labels=1,
                                           dtype=dtype)
        length = max_length or saved.get("max_length") or DEFAULT_MAX_LENGTH
        if kind == "encoder":
            length = min(length, getattr(config, "max_position_embeddings", length))
        device = device or _default_device()
        if saved.get("probe"):  # a probe on more than its head's input (feature_probe.py)
            from restlm.reward_models.feature_probe import FeatureProbe

            return FeatureProbe.read(model.to(device), tokenizer, kind, saved.get("max_length"), Path(path),
                                     asked={"lora": lora, "max_length": max_length})
        return cls(apply_lora(model, lora, "SEQ_CLS").to(device), tokenizer, kind, length)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    # ---- inputs
    def encode(self, prompts: Sequence[str], responses: Sequence[str]) -> dict[str, torch.Tensor]:
        """A right-padded batch for `forward`, one row per (prompt, response), at most max_length tokens."""
        return self.encode_marking_responses(prompts, responses)[0]

    def encode_marking_responses(self, prompts: Sequence[str],
                                 responses: Sequence[str]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """(`encode`'s batch, a 0/1 mask of the same shape marking each row's response tokens)."""
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        budget = (self.max_length - self._specials_pair) * 3 // 4
        if self.kind == "encoder":
            responses = [self._first_tokens(r, budget) for r in responses]
            encoded = self.tokenizer(list(prompts), responses, truncation="only_first", max_length=self.max_length,
                                     padding=True, return_tensors="pt")
            marks = [[int(s == 1) for s in encoded.sequence_ids(i)] for i in range(len(responses))]
            return dict(encoded), torch.tensor(marks, dtype=torch.long)
        prompt_ids = self.tokenizer(list(prompts), add_special_tokens=False)["input_ids"]
        response_ids = self.tokenizer(list(responses), add_special_tokens=False)["input_ids"]
        rows, response_lengths = [], []
        for p, r in zip(prompt_ids, response_ids):
            r = r[:budget]
            room = self.max_length - len(self._specials) - len(r)
            rows.append(self._specials + p[max(0, len(p) - room):] + r)
            response_lengths.append(len(r))
        width = max(len(row) for row in rows)
        input_ids = torch.full((len(rows), width), self.tokenizer.pad_token_id)
        attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
        response_mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, (row, n) in enumerate(zip(rows, response_lengths)):
            input_ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
            attention_mask[i, : len(row)] = 1
            response_mask[i, len(row) - n : len(row)] = 1
        return {"input_ids": input_ids, "attention_mask": attention_mask}, response_mask

    def _first_tokens(self, text: str, n: int) -> str:
        """The start of `text` that holds its first n tokens (cut at a token's end)."""
        offsets = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        return text if len(offsets) <= n else text[: offsets[n - 1][1]]

    # ---- rewards
    def forward(self, batch: dict[str, torch.Tensor], through=None) -> torch.Tensor:
        """Differentiable rewards, one per row of an `encode` batch (on the model's device).

        through: what runs the batch instead of `self.model`: its DDP wrapper while training.
        """
        extra = {"use_cache": False} if self.kind == "causal" else {}
        return (self.model if through is None else through)(**batch, **extra).logits[:, 0].float()

    def score(self, prompts: Sequence[str], responses: Sequence[str], batch_size: int = 16) -> np.ndarray:
        """Rewards of (prompt, response) pairs, in input order; no gradients, batched by length."""
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]) + len(responses[i]))
        out = np.zeros(len(prompts), dtype=np.float64)
        was_training = self.model.training
        self.model.eval()
        with torch.no_grad():
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                batch = self.encode([prompts[i] for i in idx], [responses[i] for i in idx])
                out[idx] = self.forward({k: v.to(self.device) for k, v in batch.items()}).cpu().numpy()
        self.model.train(was_training)
        return out

    def settings(self) -> dict:
        """What config.json records under SAVED_KEY, for `from_pretrained` to read back."""
        return {"kind": self.kind, "max_length": self.max_length}

    def write_extra(self, folder: Path) -> None:
        """Files a kind of reward model keeps beside the HF ones (FeatureProbe: probe.json); written into the
        folder before it is renamed into place."""

    def save(self, path: str | Path) -> None:
        """Write the model (LoRA merged) and tokenizer in HF format; config.json records kind and max_length.

        Under several processes every process must call it: the main one writes, the others wait.
        """
        from restlm.distributed import process_state
        from restlm.policies.lora import save_merged

        setattr(self.model.config, SAVED_KEY, self.settings())
        state = process_state()
        if state.is_main_process:
            save_merged(self.model, self.tokenizer, Path(path), extra=self.write_extra)
        state.wait_for_everyone()


def _default_device() -> torch.device | str:
    """This process's device under a multi-process launch; otherwise the GPU when there is one."""
    from restlm.distributed import process_state

    state = process_state()
    if state.num_processes > 1:
        return state.device
    return "cuda" if torch.cuda.is_available() else "cpu"


def _is_causal(config) -> bool:
    """A decoder-only architecture (Llama, GPT-2, ...): one that has a causal LM and no masked LM."""
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    kind = config.model_type
    return kind in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and kind not in MODEL_FOR_MASKED_LM_MAPPING_NAMES


def _is_classifier(config) -> bool:
    return any(a.endswith("ForSequenceClassification") for a in getattr(config, "architectures", None) or [])
