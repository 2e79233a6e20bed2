"""The causal LM policy (SmolLM2, Llama, GPT-2, ...): a GenerativePolicy with a chat-templated prompt."""
from __future__ import annotations

import functools
import inspect
from typing import Sequence

import torch

from restlm.data.examples import Example
from restlm.policies.base import Samples, TrainItem
from restlm.policies.generative import GenerativePolicy
from restlm.policies.lora import apply_lora


class CausalLMPolicy(GenerativePolicy):
    """Policy over strings around any AutoModelForCausalLM (SmolLM2, Llama, GPT-2, ...).

    The prompt is `prompt_template` filled with Example.text, inside the tokenizer's chat
    template as one user turn (with the generation prompt) when it has one and
    `chat_template` is not False, after a system turn holding `system_prompt` when that is
    given (else the template's own default system turn, if it writes one). Batches are
    left-padded for generation and right-padded
    for training. Supports LoRA (`lora=`), not beam search or multi-turn prompts.
    """

    kind = "causal"
    lora_task_type = "CAUSAL_LM"
    logits_from_first_output = True
    """the token pass computes logits from the first output position on (False: at every position, as before;
    benchmarks/online_speed.py measures the two)"""

    def __init__(self, model, tokenizer, accelerator, chat_template: bool | None = None,
                 system_prompt: str | None = None, **kwargs):
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token  # padding is masked; any id works
        super().__init__(model, tokenizer, accelerator, **kwargs)
        self.chat_template = bool(tokenizer.chat_template) if chat_template is None else chat_template
        self.system_prompt = system_prompt

    @classmethod
    def from_pretrained(cls, name: str, accelerator, lora: dict | None = None, dtype: torch.dtype = torch.float32,
                        **kwargs) -> "CausalLMPolicy":
        """name: 'smollm2', a Hugging Face id or a local path; lora: None or `apply_lora`'s dict."""
        from restlm.causal_lm import load_causal_lm

        model, tokenizer = load_causal_lm(name, dtype=dtype)
        return cls(apply_lora(model, lora, cls.lora_task_type), tokenizer, accelerator, **kwargs)

    def prompt(self, example: Example) -> str:
        text = super().prompt(example)
        if not self.chat_template:
            return text
        turns = [{"role": "system", "content": self.system_prompt}] if self.system_prompt is not None else []
        return self.tokenizer.apply_chat_template(turns + [{"role": "user", "content": text}], tokenize=False,
                                                  add_generation_prompt=True)

    def prompt_ids(self, example: Example) -> list[int]:
        # a chat template writes its own special tokens; a plain prompt gets the tokenizer's (e.g. BOS)
        ids = self.tokenizer(self.prompt(example), add_special_tokens=not self.chat_template)["input_ids"]
        return ids[-self.max_length :]

    def collate(self, items: Sequence[TrainItem]) -> dict:
        """input_ids = prompt + output + EOS, right-padded; labels are -100 on prompt and padding."""
        batch = rollout_batch([self.prompt_ids(item.example) for item in items],
                              [self.output_ids(item.output) for item in items], self.tokenizer.pad_token_id)
        return {**batch, "weights": torch.tensor([float(item.weight) for item in items])}

    def rollout_batch(self, samples: Samples) -> dict:
        return rollout_batch(samples.prompt_ids, samples.output_ids, self.tokenizer.pad_token_id)

    def output_logits(self, model, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        first = self.first_scored(batch)
        return causal_forward(model, batch, first)[0], batch["labels"][:, 1 + first :]

    def first_scored(self, batch: dict) -> int:
        """Where a token pass over `batch` starts: `first_scored_column`, or 0 (every position) when
        `logits_from_first_output` is off."""
        return first_scored_column(batch["labels"]) if self.logits_from_first_output else 0

    def _generate(self, examples: list[Example], settings: dict, model=None) -> torch.Tensor:
        prompts = [self.prompt_ids(e) for e in examples]
        width = max(len(p) for p in prompts)
        pad = self.tokenizer.pad_token_id
        # left padding: every prompt ends at the last position, where generation starts
        input_ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts], device=self.accelerator.device)
        attention_mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts],
                                      device=self.accelerator.device)
        out = (self.unwrapped if model is None else model).generate(input_ids=input_ids, attention_mask=attention_mask, pad_token_id=pad,
                                      eos_token_id=self.eos_ids, **settings)
        return out[:, width:]


@functools.cache
def _forward_keeps_logits(model_class: type) -> bool:
    return "logits_to_keep" in inspect.signature(model_class.forward).parameters


def keeps_logits(model) -> bool:
    """Whether the causal LM inside `model` (under DDP or PEFT) computes its logits at the last N positions
    only when asked (`logits_to_keep`; nearly every transformers causal LM does)."""
    return _forward_keeps_logits(type(_inner(model)))


def last_position(device) -> torch.Tensor:
    """`logits_to_keep` for the last position's logits alone: an index, not the int 1. With an int, transformers
    slices the hidden states (a strided [rows, 1, hidden] view), and torch's matmul of that by a frozen head
    expands the head's weight to a batch and copies it once per row: 56 MB a row for SmolLM2, a 10.6 GB peak and
    2.4x the time for a prefill of 160 rows x 100 tokens here (torch 2.13, CPU). An index gathers a contiguous
    copy of the last states first; the logits are the same."""
    return torch.tensor([-1], device=device)


def first_scored_column(labels: torch.Tensor) -> int:
    """The first column of the shifted labels (`labels[:, 1:]`, position t scoring token t + 1) that any row
    scores: the positions before it hold prompt only, so the token pass skips their vocabulary-wide logits
    (and the float32 log-softmax over them); on short outputs after long prompts that is most positions."""
    scored = (labels[:, 1:] != -100).any(0).nonzero()
    return int(scored[0]) if len(scored) else labels.shape[1] - 1


def causal_forward(model, batch: dict, first: int = 0, hidden: bool = False):
    """The token pass's forward of a causal LM over a right-padded batch: (logits at positions first .. W-2,
    aligned with `batch["labels"][:, 1 + first:]`; the last hidden states at the same positions when `hidden`,
    else None).

    Where the model's head is a plain map of its last hidden states (`head_reads_last_states`), the body runs
    with the logits of one position only and the head is applied here to a contiguous copy of the positions read:
    the same numbers as every position's logits, for the policy and for a frozen copy alike (a strided slice, as
    `logits_to_keep` takes, sends the matmul down a path that depends on whether the weights require grad)."""
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"], "use_cache": False}
    head = _output_head(model)
    if head is not None and keeps_logits(model):
        out = model(**inputs, logits_to_keep=last_position(batch["input_ids"].device), output_hidden_states=True)
        states = out.hidden_states[-1]
        if head_reads_last_states(model, head, states[:, -1], out.logits[:, -1]):
            kept = states[:, first:-1].contiguous()
            return head(kept), kept if hidden else None
    out = model(**inputs, output_hidden_states=hidden)  # every position's logits
    return out.logits[:, first:-1], out.hidden_states[-1][:, first:-1] if hidden else None


_HEAD_READS_LAST_STATES: dict[type, bool] = {}


def head_reads_last_states(model, head, last_states: torch.Tensor, logits: torch.Tensor) -> bool:
    """Whether the model's logits are its output head applied to its last hidden states (checked on the
    first batch of each model class against the logits it returned: no soft-capping or scaling after it)."""
    key = type(_inner(model))
    if key not in _HEAD_READS_LAST_STATES:
        with torch.no_grad():
            mine = head(last_states).float()
        _HEAD_READS_LAST_STATES[key] = bool(torch.allclose(mine, logits.float(), rtol=1e-2, atol=1e-2))
    return _HEAD_READS_LAST_STATES[key]


def _output_head(model):
    inner = getattr(model, "module", model)  # DDP
    get = getattr(inner, "get_output_embeddings", None)
    return get() if callable(get) else None


def _inner(model):
    model = getattr(model, "module", model)  # DDP
    return model.get_base_model() if hasattr(model, "get_base_model") else model  # PEFT


def rollout_batch(prompt_ids: Sequence[list[int]], output_ids: Sequence[list[int]], pad_id: int) -> dict:
    """input_ids = prompt + output, right-padded; labels are the output tokens, -100 elsewhere. The one
    collation of prompt and output tokens: training, scoring and online RL's rollouts all go through it."""
    width = max(len(p) + len(o) for p, o in zip(prompt_ids, output_ids))
    input_ids = torch.full((len(prompt_ids), width), pad_id)
    labels = torch.full((len(prompt_ids), width), -100)
    attention_mask = torch.zeros((len(prompt_ids), width), dtype=torch.long)
    for row, (prompt, output) in enumerate(zip(prompt_ids, output_ids)):
        n = len(prompt) + len(output)
        input_ids[row, :n] = torch.tensor(prompt + output)
        labels[row, len(prompt) : n] = torch.tensor(output)
        attention_mask[row, :n] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
