"""The `baselines.zero_shot` config section: its checks (one line naming the key) and the backend it builds."""
from __future__ import annotations

import math
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from restlm.errors import ConfigError
from restlm.zero_shot.http import HttpLLMZeroShot
from restlm.zero_shot.local import LocalLLMZeroShot
from restlm.zero_shot.prompts import DEFAULT_PROMPT, ZeroShotClassifier, check_prompt

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
