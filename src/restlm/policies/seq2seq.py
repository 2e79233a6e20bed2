"""A seq2seq policy around any AutoModelForSeq2SeqLM (T5, Marian, BART): source in, string out."""
from __future__ import annotations

from typing import Sequence

import torch

from restlm.data.examples import Example
from restlm.policies.base import Samples, TrainItem
from restlm.policies.generative import GenerativePolicy
from restlm.policies.lora import apply_lora


def load_seq2seq(name: str, dtype: torch.dtype = torch.float32):
    """(model in eval mode, tokenizer) for a Hugging Face id or local path; failures are one line."""
    from transformers import AutoModelForSeq2SeqLM

    from restlm.models import load_pretrained

    model, tokenizer = load_pretrained(name, AutoModelForSeq2SeqLM, dtype=dtype)
    return model.eval(), tokenizer


class Seq2SeqPolicy(GenerativePolicy):
    """Policy over strings: the encoder reads `prompt_template` filled with Example.text (e.g.
    T5's "translate German to English: {text}"), the decoder writes the output then EOS.

    Supports LoRA (`lora=`); not beam search. Encoder inputs are right-padded (with the mask);
    decoder labels are -100 on padding.
    """

    kind = "seq2seq"
    lora_task_type = "SEQ_2_SEQ_LM"

    @classmethod
    def from_pretrained(cls, name: str, accelerator, lora: dict | None = None, dtype: torch.dtype = torch.float32,
                        **kwargs) -> "Seq2SeqPolicy":
        """name: a Hugging Face id or a local path; lora: None or `apply_lora`'s dict."""
        model, tokenizer = load_seq2seq(name, dtype)
        return cls(apply_lora(model, lora, cls.lora_task_type), tokenizer, accelerator, **kwargs)

    def _encode_sources(self, examples: Sequence[Example]) -> dict:
        return self.tokenizer([self.prompt(e) for e in examples], truncation=True, max_length=self.max_length,
                              padding=True, return_tensors="pt")

    def prompt_ids(self, example: Example) -> list[int]:
        """The encoder's input ids of one example (EOS included, as the tokenizer writes it)."""
        return self.tokenizer(self.prompt(example), truncation=True, max_length=self.max_length)["input_ids"]

    def output_ids(self, output: str) -> list[int]:
        """The output's tokens then EOS (T5 and Marian tokenizers add it themselves), cut to max_output_length."""
        ids = self.tokenizer(text_target=output, add_special_tokens=True)["input_ids"]
        if not ids or ids[-1] != self.tokenizer.eos_token_id:
            ids = ids + [self.tokenizer.eos_token_id]
        return ids[: self.max_output_length]

    def collate(self, items: Sequence[TrainItem]) -> dict:
        batch = dict(self._encode_sources([item.example for item in items]))
        batch["labels"] = _padded([self.output_ids(item.output) for item in items], -100)
        batch["weights"] = torch.tensor([float(item.weight) for item in items])
        return batch

    def rollout_batch(self, samples: Samples) -> dict:
        """The encoder ids as `prompt_ids` wrote them (right-padded, with the mask) and the drawn tokens as labels."""
        input_ids = _padded(samples.prompt_ids, self.tokenizer.pad_token_id)
        return {"input_ids": input_ids, "attention_mask": _padded([[1] * len(p) for p in samples.prompt_ids], 0),
                "labels": _padded(samples.output_ids, -100)}

    def output_logits(self, model, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        # the decoder reads the labels shifted right behind the start token (what `labels=` would do,
        # without the model also computing a mean loss we do not use)
        decoder_input_ids = self.unwrapped.prepare_decoder_input_ids_from_labels(labels=batch["labels"])
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                       decoder_input_ids=decoder_input_ids, use_cache=False).logits
        return logits, batch["labels"]

    def _generate(self, examples: list[Example], settings: dict, model=None) -> torch.Tensor:
        batch = {k: v.to(self.accelerator.device) for k, v in self._encode_sources(examples).items()}
        out = (self.unwrapped if model is None else model).generate(**batch, pad_token_id=self.tokenizer.pad_token_id,
                                      eos_token_id=self.eos_ids, **settings)
        return out[:, 1:]  # drop the decoder start token


def _padded(rows: Sequence[list[int]], pad: int) -> torch.Tensor:
    """Rows of ids, right-padded with `pad` to the longest."""
    out = torch.full((len(rows), max(len(r) for r in rows)), pad)
    for i, ids in enumerate(rows):
        out[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    return out
