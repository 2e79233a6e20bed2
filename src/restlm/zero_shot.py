"""Zero-shot LLM baseline for sentence-pair classification (MRPC: is it a paraphrase?).

Two backends behind one interface, `predict(examples) -> [0/1, ...]` (1 = "Yes"):
- LocalLLMZeroShot: a local causal LM; compares the next-token probability of "Yes" with
  that of "No" after the prompt. No generation, so one batched forward pass per batch.
- HttpLLMZeroShot: any OpenAI-compatible chat completions endpoint; parses the reply text.
Neither is trained or calibrated: this is the "just ask an LLM" reference point.
"""
from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from typing import Protocol

import torch
from tqdm.auto import tqdm

from restlm.data.examples import Example
from restlm.errors import ConfigError, RestlmError

DEFAULT_PROMPT = (
    "Are the following two sentences paraphrases of each other? "
    "Sentence 1: {sentence1} Sentence 2: {sentence2}. Answer with 'Yes' or 'No'."
)
# Single-token spellings of each answer; their probabilities are summed. With a chat template
# the answer starts right after "assistant\n" (no space), without one after "Answer:" (space),
# so both spellings count, and lower case too since small models often answer "yes".
YES_VARIANTS = ("Yes", " Yes", "yes", " yes")
NO_VARIANTS = ("No", " No", "no", " no")
# Appended when the model has no chat template, so the next token is the answer.
PLAIN_ANSWER_CUE = "\nAnswer:"


class ZeroShotClassifier(Protocol):
    """What every zero-shot backend offers."""

    def predict(self, examples: list[Example]) -> list[int]:
        """Sentence pairs in, one label per pair out: 1 = paraphrase ("Yes"), 0 = not."""
        ...


def check_prompt(prompt: str) -> str:
    """Return `prompt` if it is a format string using only {sentence1} and {sentence2}."""
    try:
        prompt.format(sentence1="", sentence2="")
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError("baselines.zero_shot.prompt",
                          f"must be a format string with only {{sentence1}} and {{sentence2}} "
                          f"({type(exc).__name__}: {exc})") from None
    return prompt


def fill_prompt(prompt: str, example: Example) -> str:
    """The prompt with the example's two sentences filled in."""
    if example.text_pair is None:
        raise RestlmError(f"zero-shot needs sentence pairs; example '{example.uid}' has no text_pair")
    return prompt.format(sentence1=example.text, sentence2=example.text_pair)


# ---------------------------------------------------------------- local causal LM


class LocalLLMZeroShot:
    """Zero-shot with a local causal LM, scored by P(next token = Yes) vs P(No).

    Supports any causal LM that `load_causal_lm` loads; the chat template is used when the
    tokenizer has one (the prompt is the user message), otherwise the plain prompt followed
    by "\\nAnswer:". Pass `model` and `tokenizer` to use objects already in memory.
    Not supported: answers that are not a single token, calibration of the decision threshold
    (a pair is "Yes" exactly when its summed Yes probability beats the No one).
    """

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
            raise RestlmError(f"model '{model_name}': tokenizer has no single-token Yes/No answer")

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
                            position_ids=positions, logits_to_keep=1).logits[:, -1, :]
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


# ---------------------------------------------------------------- HTTP endpoint


_ANSWER = re.compile(r"^[^a-z0-9]*(yes|no)\b")


def parse_yes_no(reply: str) -> int | None:
    """1 if the reply starts with "yes", 0 if with "no" (case, quotes, '*' ignored), else None."""
    match = _ANSWER.match(reply.strip().lower())
    return None if match is None else int(match.group(1) == "yes")


class HttpLLMZeroShot:
    """Zero-shot through an OpenAI-compatible chat completions endpoint (llama.cpp server,
    vLLM, Ollama, OpenAI, ...). One request per pair at temperature 0; standard library only.

    `url` is the API base (".../v1") or the full ".../chat/completions" address. A reply that
    starts with neither yes nor no counts as 0; `unparsed` holds how many of the last
    `predict` call's replies that was. Network and HTTP errors raise RestlmError.
    """

    def __init__(self, url: str, model: str, prompt: str = DEFAULT_PROMPT,
                 api_key: str | None = None, timeout: float = 30, max_tokens: int = 5,
                 progress: bool = True):
        base = url.rstrip("/")
        self.url = base if base.endswith("/chat/completions") else base + "/chat/completions"
        self.model = model
        self.prompt = check_prompt(prompt)
        self.api_key = api_key
        self.timeout = timeout
        self.max_tokens = max_tokens
        self.progress = progress
        self.unparsed = 0

    def predict(self, examples: list[Example]) -> list[int]:
        """Sentence pairs in, one 0/1 label per pair out (unparsable replies give 0)."""
        self.unparsed = 0
        labels = []
        for ex in tqdm(examples, desc="zero-shot (http)", unit="pair", disable=not self.progress):
            label = parse_yes_no(self.complete(fill_prompt(self.prompt, ex)))
            if label is None:
                self.unparsed += 1
            labels.append(label or 0)
        return labels

    def complete(self, text: str) -> str:
        """Send one user message, return the reply text."""
        body = {"model": self.model, "messages": [{"role": "user", "content": text}],
                "temperature": 0, "max_tokens": self.max_tokens}
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(self.url, data=json.dumps(body).encode(),
                                         headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload = json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            raise RestlmError(f"zero-shot endpoint {self.url}: HTTP {exc.code} "
                              f"{exc.reason}{_error_detail(exc)}") from None
        except urllib.error.URLError as exc:
            raise RestlmError(f"zero-shot endpoint {self.url}: cannot connect ({exc.reason})") from None
        except (TimeoutError, OSError) as exc:
            raise RestlmError(f"zero-shot endpoint {self.url}: {type(exc).__name__} {exc}") from None
        except ValueError:
            raise RestlmError(f"zero-shot endpoint {self.url}: reply is not JSON") from None
        try:
            return payload["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            raise RestlmError(f"zero-shot endpoint {self.url}: reply has no "
                              f"choices[0].message.content") from None


def _error_detail(exc: urllib.error.HTTPError) -> str:
    # OpenAI-style servers explain the failure in {"error": {"message": ...}}
    try:
        message = json.loads(exc.read().decode("utf-8"))["error"]["message"]
    except Exception:  # noqa: BLE001 - the detail is a nicety; the status line is enough
        return ""
    return f": {' '.join(str(message).split())[:200]}"


# ---------------------------------------------------------------- from config


_KEYS = {"backend", "model", "url", "prompt", "api_key_env", "batch_size", "timeout", "max_tokens"}


def build_zero_shot(cfg: dict) -> ZeroShotClassifier | None:
    """Build the baseline from the `baselines.zero_shot` config section.

    In: a plain dict, e.g. {"backend": "local", "model": "smollm2"} or {"backend": "http",
    "url": "http://127.0.0.1:8080/v1", "model": "...", "api_key_env": "OPENAI_API_KEY"};
    "prompt" is optional. Out: a classifier, or None for backend "none" (the default).
    Raises ConfigError naming the key for unknown keys, backends or missing values.
    """
    where = "baselines.zero_shot"
    for key in cfg:
        if key not in _KEYS:
            raise ConfigError(f"{where}.{key}", f"unknown key; known: {', '.join(sorted(_KEYS))}")
    backend = cfg.get("backend") or "none"
    prompt = check_prompt(cfg.get("prompt") or DEFAULT_PROMPT)
    if backend == "none":
        return None
    if backend == "local":
        return LocalLLMZeroShot(cfg.get("model") or "smollm2", prompt,
                                batch_size=int(cfg.get("batch_size", 8)))
    if backend == "http":
        for key in ("url", "model"):
            if not cfg.get(key):
                raise ConfigError(f"{where}.{key}", "required when backend is 'http'")
        api_key = None
        if cfg.get("api_key_env"):
            api_key = os.environ.get(cfg["api_key_env"])
            if not api_key:
                raise ConfigError(f"{where}.api_key_env",
                                  f"environment variable {cfg['api_key_env']} is not set")
        return HttpLLMZeroShot(cfg["url"], cfg["model"], prompt, api_key=api_key,
                               timeout=float(cfg.get("timeout", 30)),
                               max_tokens=int(cfg.get("max_tokens", 5)))
    raise ConfigError(f"{where}.backend", f"unknown backend '{backend}'; use local, http or none")
