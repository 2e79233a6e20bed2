"""The local backend: a causal LM scored by the next-token probability of Yes against No."""
from __future__ import annotations

import torch
from tqdm.auto import tqdm

from restlm.data.examples import Example
from restlm.errors import ModelLoadError
from restlm.policies.causal import last_position
from restlm.zero_shot.prompts import (
    DEFAULT_PROMPT,
    NO_VARIANTS,
    PLAIN_ANSWER_CUE,
    YES_VARIANTS,
    check_prompt,
    fill_prompt,
)

# ---------------------------------------------------------------- local causal LM


class LocalLLMZeroShot:
    """Zero-shot with a local causal LM, scored by P(next token = Yes) vs P(No).

    Supports any causal LM that `load_causal_lm` loads; the chat template is used when the
    tokenizer has one (the prompt is the user message), otherwise the plain prompt followed
    by "\\nAnswer:". Pass `model` and `tokenizer` to use objects already in memory.
    Not supported: answers that are not a single token, calibration of the decision threshold
    (a pair is "Yes" exactly when its summed Yes probability beats the No one).
    Every pair gets an answer, so `unparsed` is always 0.
    """

    unparsed = 0
    unparsed_fraction = 0.0

    def __init__(self, model_name: str = "smollm2", prompt: str = DEFAULT_PROMPT,
                 batch_size: int = 8, *, model=None, tokenizer=None, progress: bool = True):
        from restlm.causal_lm import load_causal_lm

        self.prompt = check_prompt(prompt)
        self.batch_size = batch_size
        self.progress = progress
        if model is None or tokenizer is None:
            model, tokenizer = load_causal_lm(model_name)
        self.model = model.eval()
        self.tokenizer = tokenizer
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.padding_side = "left"
        self.use_chat = bool(getattr(tokenizer, "chat_template", None))
        self.yes_ids = _single_token_ids(tokenizer, YES_VARIANTS)
        self.no_ids = _single_token_ids(tokenizer, NO_VARIANTS)
        if not self.yes_ids or not self.no_ids:
            raise ModelLoadError(model_name, "its tokenizer has no single-token Yes/No answer, so it cannot "
                                             "be a zero-shot baseline")

    def render(self, example: Example) -> str:
        """The exact text fed to the model for one example."""
        text = fill_prompt(self.prompt, example)
        if not self.use_chat:
            return text + PLAIN_ANSWER_CUE
        return self.tokenizer.apply_chat_template(
            [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True)

    @torch.inference_mode()
    def scores(self, examples: list[Example]) -> list[float]:
        """Log-odds per pair: log P(Yes variants) - log P(No variants) at the next token."""
        texts = [self.render(ex) for ex in examples]
        # Batches of similar length waste less compute on padding; order is restored below.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = [0.0] * len(texts)
        starts = range(0, len(order), self.batch_size)
        for start in tqdm(starts, desc="zero-shot", unit="batch", disable=not self.progress):
            idx = order[start:start + self.batch_size]
            for i, score in zip(idx, self._score_batch([texts[i] for i in idx])):
                out[i] = score
        return out

    def _score_batch(self, texts: list[str]) -> list[float]:
        # The chat template already holds the special tokens; a plain prompt needs BOS etc.
        enc = self.tokenizer(texts, return_tensors="pt", padding=True,
                             add_special_tokens=not self.use_chat)
        enc = enc.to(self.model.device)
        mask = enc["attention_mask"]
        # Left padding shifts positions; count them from each row's first real token so a
        # pair scores the same whatever its batch (RoPE models would not mind, GPT-2 would).
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        logits = self.model(input_ids=enc["input_ids"], attention_mask=mask,
                            position_ids=positions, logits_to_keep=last_position(mask.device)).logits[:, -1, :]
        logp = torch.log_softmax(logits.float(), dim=-1)
        yes = torch.logsumexp(logp[:, self.yes_ids], dim=-1)
        no = torch.logsumexp(logp[:, self.no_ids], dim=-1)
        return (yes - no).tolist()

    def predict(self, examples: list[Example]) -> list[int]:
        """Sentence pairs in, 1 where Yes is more likely than No, else 0."""
        return [int(s > 0) for s in self.scores(examples)]


def _single_token_ids(tokenizer, words: tuple[str, ...]) -> list[int]:
    ids = {tuple(tokenizer.encode(w, add_special_tokens=False)) for w in words}
    return sorted(i[0] for i in ids if len(i) == 1)
