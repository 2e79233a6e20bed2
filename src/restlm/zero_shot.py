"""Zero-shot LLM baseline for sentence-pair classification (MRPC: is it a paraphrase?).

Two backends behind one interface, `predict(examples) -> [0/1, ...]` (1 = "Yes"):
- LocalLLMZeroShot: a local causal LM; compares the next-token probability of "Yes" with
  that of "No" after the prompt. No generation, so one batched forward pass per batch.
- HttpLLMZeroShot: any OpenAI-compatible chat completions endpoint; parses the reply text.
Neither is trained or calibrated: this is the "just ask an LLM" reference point.
"""
from __future__ import annotations

import ipaddress
import json
import math
import os
import re
import string
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Protocol

import torch
from tqdm.auto import tqdm

from restlm.data.examples import Example
from restlm.errors import ConfigError, ModelLoadError, RestlmError

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

    unparsed: int
    """how many replies of the last `predict` were neither yes nor no (always 0 for 'local')"""
    unparsed_fraction: float
    """that count as a share of the last `predict`'s examples"""

    def predict(self, examples: list[Example]) -> list[int]:
        """Sentence pairs in, one label per pair out: 1 = paraphrase ("Yes"), 0 = not."""
        ...


def check_prompt(prompt: str) -> str:
    """Return `prompt` if it is a format string using only {sentence1} and {sentence2}."""
    try:
        fields = {field for _, field, _, _ in string.Formatter().parse(prompt) if field is not None}
        prompt.format(sentence1="", sentence2="")
        if fields - {"sentence1", "sentence2"}:
            raise KeyError(", ".join(sorted(fields - {"sentence1", "sentence2"})))
    except Exception as exc:  # noqa: BLE001 - any failure of str.format is a bad prompt
        raise ConfigError("baselines.zero_shot.prompt",
                          f"must be a format string with only {{sentence1}} and {{sentence2}} "
                          f"({type(exc).__name__}: {' '.join(str(exc).split())})") from None
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
MAX_REPLY_BYTES = 1 << 20
"""a chat reply of a few tokens is a few hundred bytes; anything past 1 MiB is not an answer"""
_WARNED_HOSTS: set[str] = set()


def parse_yes_no(reply: str) -> int | None:
    """1 if the reply starts with "yes", 0 if with "no" (case, quotes, '*' ignored), else None."""
    match = _ANSWER.match(reply.strip().lower())
    return None if match is None else int(match.group(1) == "yes")


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port or default


def _is_local(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _SameOriginRedirects(urllib.request.HTTPRedirectHandler):
    """Follow a 307/308 (POST and body kept) within the endpoint's origin; refuse anything else,
    so the API key never reaches another host and a POST never silently turns into a GET."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        newurl = urllib.parse.urljoin(req.full_url, newurl)
        if _origin(newurl) != _origin(req.full_url) or code not in (307, 308):
            raise RestlmError(f"zero-shot endpoint {req.full_url}: redirected (HTTP {code}) to {newurl}; "
                              f"not followed (the key stays with the host you named): set "
                              f"baselines.zero_shot.url to the address you mean")
        return urllib.request.Request(newurl, data=req.data, method=req.get_method(),
                                      headers={**req.headers, **req.unredirected_hdrs})


_OPENER = urllib.request.build_opener(_SameOriginRedirects)


class HttpLLMZeroShot:
    """Zero-shot through an OpenAI-compatible chat completions endpoint (llama.cpp server,
    vLLM, Ollama, OpenAI, ...). One request per pair at temperature 0; standard library only.

    `url` is the API base (".../v1") or the full ".../chat/completions" address. A reply that
    starts with neither yes nor no counts as 0; `unparsed` and `unparsed_fraction` say how many
    of the last `predict` call's replies that was, and `predict` fails when the share is above
    `max_unparsed`. Each request has `timeout_s` seconds in all (connect, wait and read) and at
    most 1 MiB of reply. The key is never sent to another origin: a redirect off the endpoint's
    scheme, host and port is refused. Network, HTTP and reply errors raise a one-line RestlmError.
    """

    def __init__(self, url: str, model: str, prompt: str = DEFAULT_PROMPT,
                 api_key: str | None = None, timeout_s: float = 60, max_tokens: int = 5,
                 max_unparsed: float = 0.5, progress: bool = True):
        base = url.rstrip("/")
        self.url = base if base.endswith("/chat/completions") else base + "/chat/completions"
        self.model = model
        self.prompt = check_prompt(prompt)
        self.api_key = api_key
        self.timeout_s = float(timeout_s)
        self.max_tokens = max_tokens
        self.max_unparsed = float(max_unparsed)
        self.progress = progress
        self.unparsed = 0
        self.unparsed_fraction = 0.0
        scheme, host, _ = _origin(self.url)
        if scheme == "http" and not _is_local(host) and host not in _WARNED_HOSTS:
            _WARNED_HOSTS.add(host)
            print(f"restlm: warning: zero-shot endpoint {self.url} is plain http to another machine: the "
                  f"sentences{' and the API key' if api_key else ''} travel unencrypted", file=sys.stderr)

    def predict(self, examples: list[Example]) -> list[int]:
        """Sentence pairs in, one 0/1 label per pair out (unparsable replies give 0).
        Raises RestlmError when more than `max_unparsed` of the replies were neither yes nor no."""
        self.unparsed, labels, example_reply = 0, [], None
        for ex in tqdm(examples, desc="zero-shot (http)", unit="pair", disable=not self.progress):
            reply = self.complete(fill_prompt(self.prompt, ex))
            label = parse_yes_no(reply)
            if label is None:
                self.unparsed += 1
                example_reply = reply if example_reply is None else example_reply
            labels.append(label or 0)
        self.unparsed_fraction = self.unparsed / len(examples) if examples else 0.0
        if self.unparsed_fraction > self.max_unparsed:
            shown = " ".join(example_reply.split())[:80]
            raise RestlmError(f"zero-shot endpoint {self.url}: {self.unparsed} of {len(examples)} replies "
                              f"({self.unparsed_fraction:.0%}) were neither yes nor no (e.g. {shown!r}), "
                              f"above baselines.zero_shot.max_unparsed = {self.max_unparsed:g}")
        return labels

    def complete(self, text: str) -> str:
        """Send one user message, return the reply text ("" for a null content)."""
        body = {"model": self.model, "messages": [{"role": "user", "content": text}],
                "temperature": 0, "max_tokens": self.max_tokens}
        request = urllib.request.Request(self.url, data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
        if self.api_key:
            # an unredirected header is not copied by urllib onto a redirect's new request
            request.add_unredirected_header("Authorization", f"Bearer {self.api_key}")
        payload = self._within_timeout(lambda: self._post(request))
        try:
            content = payload["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise RestlmError(f"zero-shot endpoint {self.url}: reply has no "
                              f"choices[0].message.content") from None
        if content is not None and not isinstance(content, str):
            raise RestlmError(f"zero-shot endpoint {self.url}: choices[0].message.content is a "
                              f"{type(content).__name__}, not text")
        return content or ""

    def _within_timeout(self, call):
        # urllib's timeout bounds each socket read, so a server that drips a byte a second never
        # times out; a worker thread bounds the whole request (it is left to die on its own)
        outcome: dict = {}

        def work():
            try:
                outcome["value"] = call()
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                outcome["error"] = exc
        worker = threading.Thread(target=work, daemon=True, name="restlm-zero-shot-request")
        worker.start()
        worker.join(self.timeout_s)
        if worker.is_alive():
            raise RestlmError(f"zero-shot endpoint {self.url}: no complete reply within {self.timeout_s:g} s "
                              f"(baselines.zero_shot.timeout_s)")
        if "error" in outcome:
            raise outcome["error"]
        return outcome["value"]

    def _post(self, request: urllib.request.Request) -> dict:
        try:
            with _OPENER.open(request, timeout=self.timeout_s) as response:
                declared = response.headers.get("Content-Length")
                if declared and declared.isdigit() and int(declared) > MAX_REPLY_BYTES:
                    raise RestlmError(self._too_big())
                data = response.read(MAX_REPLY_BYTES + 1)
                if len(data) > MAX_REPLY_BYTES:
                    raise RestlmError(self._too_big())
            return json.loads(data.decode("utf-8"))
        except urllib.error.HTTPError as exc:
            raise RestlmError(f"zero-shot endpoint {self.url}: HTTP {exc.code} "
                              f"{exc.reason}{_error_detail(exc)}") from None
        except urllib.error.URLError as exc:
            raise RestlmError(f"zero-shot endpoint {self.url}: cannot connect ({exc.reason})") from None
        except (TimeoutError, OSError) as exc:
            raise RestlmError(f"zero-shot endpoint {self.url}: {type(exc).__name__} {exc}") from None
        except ValueError:
            raise RestlmError(f"zero-shot endpoint {self.url}: reply is not JSON") from None

    def _too_big(self) -> str:
        return f"zero-shot endpoint {self.url}: reply larger than {MAX_REPLY_BYTES // (1 << 20)} MiB; not read"


def _error_detail(exc: urllib.error.HTTPError) -> str:
    # OpenAI-style servers explain the failure in {"error": {"message": ...}}
    try:
        message = json.loads(exc.read(64 * 1024).decode("utf-8"))["error"]["message"]
    except Exception:  # noqa: BLE001 - the detail is a nicety; the status line is enough
        return ""
    return f": {' '.join(str(message).split())[:200]}"


# ---------------------------------------------------------------- from config


_WHERE = "baselines.zero_shot"
_KEYS = {"backend", "model", "url", "prompt", "api_key_env", "batch_size", "timeout_s", "max_tokens",
         "max_unparsed"}
_BACKENDS = ("local", "http", "none")


def _number(cfg: dict, key: str, low: float, high: float, integer: bool = False):
    """cfg[key] if it is a number in [low, high] (an int when `integer`), else ConfigError."""
    value = cfg[key]
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or not (math.isfinite(value) and low <= value <= high):
        raise ConfigError(f"{_WHERE}.{key}", f"must be {'an integer' if integer else 'a number'} "
                                             f"in [{low:g}, {high:g}], got {value!r}")
    return value


def check_zero_shot(cfg: dict) -> None:
    """Check the `baselines.zero_shot` section without loading a model or touching the network:
    known keys and backend, a prompt with only {sentence1} and {sentence2}, numbers in range, and
    for 'http' a url with an http(s) scheme and a host, a model, and the key's environment variable
    set (when api_key_env is not null); for 'local' a model given as a path must be a folder with
    config.json. Raises ConfigError naming the key; returns None."""
    for key in cfg:
        if key not in _KEYS:
            raise ConfigError(f"{_WHERE}.{key}", f"unknown key; known: {', '.join(sorted(_KEYS))}")
    backend = cfg.get("backend") or "none"
    if backend not in _BACKENDS:
        raise ConfigError(f"{_WHERE}.backend", f"unknown backend {backend!r}; use local, http or none")
    prompt = cfg.get("prompt") or DEFAULT_PROMPT
    if not isinstance(prompt, str):
        raise ConfigError(f"{_WHERE}.prompt", f"must be a string, got {type(prompt).__name__}")
    check_prompt(prompt)
    if backend == "none":
        return
    for key, low, high, integer in (("max_unparsed", 0, 1, False), ("timeout_s", 1e-3, 86400, False),
                                    ("batch_size", 1, 1 << 20, True), ("max_tokens", 1, 1 << 20, True)):
        if cfg.get(key) is not None:
            _number(cfg, key, low, high, integer)
    if not cfg.get("model") or not isinstance(cfg["model"], str):
        raise ConfigError(f"{_WHERE}.model", f"required (a string) when backend is {backend!r}")
    if backend == "local":
        _check_local_model(cfg["model"])
    if backend == "http":
        _check_url(cfg.get("url"))
        env = cfg.get("api_key_env")
        if env and not os.environ.get(env):
            raise ConfigError(f"{_WHERE}.api_key_env", f"environment variable {env} is not set (set it, or "
                                                       f"set api_key_env to null for an endpoint without a key)")


def _check_local_model(name: str) -> None:
    # only what a glance at the disk shows: a typo in a path fails here, before the run directory;
    # a hub id or "smollm2" is left to load_causal_lm (checking it would need the network)
    path = Path(name).expanduser()
    looks_local = path.is_absolute() or name.startswith(("./", "../", "~", ".\\")) or path.exists()
    if looks_local and not path.exists():
        raise ConfigError(f"{_WHERE}.model", f"no such file or directory: {name}")
    if path.is_dir() and not (path / "config.json").is_file():
        raise ConfigError(f"{_WHERE}.model", f"{name} is a folder without config.json, not a saved model")


def _check_url(url) -> None:
    key = f"{_WHERE}.url"
    if not url:
        raise ConfigError(key, "required when backend is 'http'")
    if not isinstance(url, str):
        raise ConfigError(key, f"must be a string, got {type(url).__name__}")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise ConfigError(key, f"{url!r} needs an http:// or https:// scheme")
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        port_ok = False
    if not parts.hostname or not port_ok or any(c.isspace() for c in url):
        raise ConfigError(key, f"{url!r} has no valid host[:port]")


def build_zero_shot(cfg: dict) -> ZeroShotClassifier | None:
    """Build the baseline from the `baselines.zero_shot` config section.

    In: a plain dict, e.g. {"backend": "local", "model": "smollm2"} or {"backend": "http",
    "url": "http://127.0.0.1:8080/v1", "model": "...", "api_key_env": "OPENAI_API_KEY"};
    the other keys are optional. Out: a classifier, or None for backend "none" (the default).
    Raises ConfigError naming the key (check_zero_shot), and ModelLoadError for a local model
    that cannot be loaded or has no single-token Yes/No: both one line, so call it before a run starts.
    """
    check_zero_shot(cfg)
    backend = cfg.get("backend") or "none"
    prompt = cfg.get("prompt") or DEFAULT_PROMPT
    if backend == "local":
        return LocalLLMZeroShot(cfg["model"], prompt, batch_size=int(cfg.get("batch_size") or 8))
    if backend == "http":
        env = cfg.get("api_key_env")
        return HttpLLMZeroShot(cfg["url"], cfg["model"], prompt, api_key=os.environ.get(env) if env else None,
                               timeout_s=float(cfg.get("timeout_s") or 60),
                               max_tokens=int(cfg.get("max_tokens") or 5),
                               max_unparsed=float(0.5 if cfg.get("max_unparsed") is None else cfg["max_unparsed"]))
    return None
