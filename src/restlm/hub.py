"""Is the Hugging Face hub usable? Asked before a download, so that an offline machine fails in
seconds with one line instead of minutes of retries."""
from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

_TRUE = {"1", "ON", "YES", "TRUE"}


def offline(flags: tuple[str, ...] = ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE")) -> bool:
    """True when an offline flag of the hub libraries is set."""
    return any(os.environ.get(flag, "").upper() in _TRUE for flag in flags)


def hub_reachable(timeout: float = 3.0) -> bool:
    """True when the hub endpoint accepts a connection (or a proxy is set: only it knows)."""
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = endpoint.port or (80 if endpoint.scheme == "http" else 443)
    try:
        socket.create_connection((endpoint.hostname, port), timeout=timeout).close()
    except OSError:
        return False
    return True
