"""The HTTP backend: an OpenAI-compatible chat completions endpoint, standard library only."""
from __future__ import annotations

import ipaddress
import json
import re
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request

from tqdm.auto import tqdm

from restlm.data.examples import Example
from restlm.errors import RestlmError
from restlm.zero_shot.prompts import DEFAULT_PROMPT, check_prompt, fill_prompt

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
            raise RestlmError(self._timed_out())
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
        except TimeoutError:  # a silent socket, timed out by urllib before the worker's join did
            raise RestlmError(self._timed_out()) from None
        except OSError as exc:
            raise RestlmError(f"zero-shot endpoint {self.url}: {type(exc).__name__} {exc}") from None
        except ValueError:
            raise RestlmError(f"zero-shot endpoint {self.url}: reply is not JSON") from None

    def _timed_out(self) -> str:
        return f"zero-shot endpoint {self.url}: no complete reply within {self.timeout_s:g} s (baselines.zero_shot.timeout_s)"

    def _too_big(self) -> str:
        return f"zero-shot endpoint {self.url}: reply larger than {MAX_REPLY_BYTES // (1 << 20)} MiB; not read"


def _error_detail(exc: urllib.error.HTTPError) -> str:
    # OpenAI-style servers explain the failure in {"error": {"message": ...}}
    try:
        message = json.loads(exc.read(64 * 1024).decode("utf-8"))["error"]["message"]
    except Exception:  # noqa: BLE001 - the detail is a nicety; the status line is enough
        return ""
    return f": {' '.join(str(message).split())[:200]}"
