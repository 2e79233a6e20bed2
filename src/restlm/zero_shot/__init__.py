"""Zero-shot LLM baseline for sentence-pair classification (MRPC: is it a paraphrase?).

Two backends behind one interface, `predict(examples) -> [0/1, ...]` (1 = "Yes"):
- LocalLLMZeroShot: a local causal LM; compares the next-token probability of "Yes" with
  that of "No" after the prompt. No generation, so one batched forward pass per batch.
- HttpLLMZeroShot: any OpenAI-compatible chat completions endpoint; parses the reply text.
Neither is trained or calibrated: this is the "just ask an LLM" reference point.
"""
from __future__ import annotations

from restlm.zero_shot.config import build_zero_shot, check_zero_shot
from restlm.zero_shot.http import MAX_REPLY_BYTES, HttpLLMZeroShot, parse_yes_no
from restlm.zero_shot.local import LocalLLMZeroShot
from restlm.zero_shot.prompts import (
                                      DEFAULT_PROMPT,
                                      NO_VARIANTS,
                                      PLAIN_ANSWER_CUE,
                                      YES_VARIANTS,
                                      ZeroShotClassifier,
                                      check_prompt,
                                      fill_prompt,
)

__all__ = ["DEFAULT_PROMPT", "MAX_REPLY_BYTES", "NO_VARIANTS", "PLAIN_ANSWER_CUE", "YES_VARIANTS", "HttpLLMZeroShot",
           "LocalLLMZeroShot", "ZeroShotClassifier", "build_zero_shot", "check_prompt", "check_zero_shot", "fill_prompt",
           "parse_yes_no"]
