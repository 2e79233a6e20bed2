"""The zero-shot HTTP client and config against hostile endpoints and bad configs (issue 15): the key
never leaves its origin, replies are capped in size and in time, odd replies are counted or refused
with one line, and a bad `baselines.zero_shot` section fails before anything runs."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from restlm.data.examples import Example
from restlm.errors import ConfigError, ModelLoadError, RestlmError
from restlm.zero_shot import HttpLLMZeroShot, build_zero_shot, check_zero_shot
from restlm.zero_shot import http as zero_shot_http

PAIR = [Example("alpha", "beta", 1, uid="p")]
KEY = "sk-secret-123"


class Endpoint:
    """A local HTTP server on 127.0.0.1 and an ephemeral port; `answer(handler)` replies to each POST,
    and every request's path and Authorization header is kept in `seen`."""

    def __init__(self, answer):
        self.seen: list[dict] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the http.server name
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                endpoint.seen.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
                try:
                    answer(self)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up, as it should
                    pass

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads, self.httpd.block_on_close = True, False
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def url(self, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def endpoints():
    started = []

    def start(answer):
        started.append(Endpoint(answer))
        return started[-1]
    yield start
    for endpoint in started:
        endpoint.close()


def send(handler, status: int, data: bytes, headers: dict | None = None, length: bool = True):
    handler.send_response(status)
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    if length:
        handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def reply(content) -> bytes:
    return json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}).encode()


def chat(text="Yes"):
    return lambda handler: send(handler, 200, reply(text), {"Content-Type": "application/json"})


def one_line_error(clf: HttpLLMZeroShot, examples=PAIR) -> str:
    with pytest.raises(RestlmError) as info:
        clf.predict(examples)
    text = str(info.value)
    assert "\n" not in text and clf.url in text
    return text


# ---------------------------------------------------------------- redirects and credentials


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("target", ["localhost", "other port", "scheme-relative"])
def test_a_redirect_to_another_origin_never_carries_the_key(code, target, endpoints):
    other = endpoints(chat("Yes"))
    location = {"localhost": other.url("localhost") + "/v1/chat/completions",
                "other port": other.url() + "/v1/chat/completions",
                "scheme-relative": f"//localhost:{other.port}/v1/chat/completions"}[target]
    first = endpoints(lambda handler: send(handler, code, b"", {"Location": location}))
    clf = HttpLLMZeroShot(first.url() + "/v1", "m", api_key=KEY, progress=False)
    text = one_line_error(clf)
    assert f"redirected (HTTP {code})" in text and f":{other.port}/v1/chat/completions" in text
    assert [r["auth"] for r in first.seen] == [f"Bearer {KEY}"]
    assert all(r["auth"] is None for r in other.seen) and KEY not in text
    assert other.seen == []  # refused outright: nothing reached the other origin


@pytest.mark.parametrize("code", [307, 308])
def test_a_same_origin_307_or_308_keeps_the_post_and_the_key(code, endpoints):
    def answer(handler):
        if handler.path == "/old/chat/completions":
            send(handler, code, b"", {"Location": "/new/chat/completions"})
        else:
            chat("Yes")(handler)
    server = endpoints(answer)
    clf = HttpLLMZeroShot(server.url() + "/old", "m", api_key=KEY, progress=False)
    assert clf.predict(PAIR) == [1]
    assert [(r["path"], r["auth"]) for r in server.seen] == [("/old/chat/completions", f"Bearer {KEY}"),
                                                             ("/new/chat/completions", f"Bearer {KEY}")]
    assert json.loads(server.seen[1]["body"])["model"] == "m"


@pytest.mark.parametrize("url,warned", [("http://example.invalid/v1", True), ("https://example.invalid/v1", False),
                                        ("http://127.0.0.1:8080/v1", False), ("http://localhost:8080/v1", False),
                                        ("http://[::1]:8080/v1", False), ("http://10.0.0.7:8000/v1", True)])
def test_plain_http_to_another_machine_warns_once(url, warned, capsys, monkeypatch):
    monkeypatch.setattr(zero_shot_http, "_WARNED_HOSTS", set())
    HttpLLMZeroShot(url, "m", api_key=KEY, progress=False)
    HttpLLMZeroShot(url, "m", api_key=KEY, progress=False)
    err = capsys.readouterr().err
    assert err.count("warning: zero-shot endpoint") == int(warned)
    assert KEY not in err


# ---------------------------------------------------------------- size and time


def big(length_header: bool):
    data = reply("Yes " + "x" * (zero_shot_http.MAX_REPLY_BYTES + 10))
    return lambda handler: send(handler, 200, data, {"Connection": "close"}, length=length_header)


@pytest.mark.parametrize("length_header", [True, False])
def test_an_oversize_reply_is_a_one_line_error(length_header, endpoints):
    server = endpoints(big(length_header))
    text = one_line_error(HttpLLMZeroShot(server.url(), "m", progress=False))
    assert "larger than 1 MiB" in text and len(text) < 300


def test_a_reply_just_under_the_cap_is_read(endpoints, monkeypatch):
    monkeypatch.setattr(zero_shot_http, "MAX_REPLY_BYTES", len(reply("Yes")))
    server = endpoints(chat("Yes"))
    assert HttpLLMZeroShot(server.url(), "m", progress=False).predict(PAIR) == [1]


def silent(handler):
    time.sleep(3)
    chat("Yes")(handler)


def drip(handler):
    # every byte arrives well inside a per-read timeout, the whole reply does not
    data = reply("Yes")
    handler.send_response(200)
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    for byte in data[:30]:
        handler.wfile.write(bytes([byte]))
        handler.wfile.flush()
        time.sleep(0.2)  # 6 s for the whole reply: far past the 0.6 s timeout, a wide margin on a loaded machine


@pytest.mark.parametrize("answer", [silent, drip], ids=["silent", "drip"])
def test_a_slow_endpoint_hits_the_whole_request_timeout(answer, endpoints):
    server = endpoints(answer)
    start = time.monotonic()
    text = one_line_error(HttpLLMZeroShot(server.url(), "m", timeout_s=0.6, progress=False))
    assert "no complete reply within 0.6 s (baselines.zero_shot.timeout_s)" in text
    assert time.monotonic() - start < 4.0  # the timeout, not the 6 s reply (a loaded CPU may add seconds)


# ---------------------------------------------------------------- odd replies


@pytest.mark.parametrize("content", [5, 1.5, True, ["Yes"], {"text": "Yes"}])
def test_a_content_that_is_not_text_is_a_one_line_error(content, endpoints):
    server = endpoints(chat(content))
    text = one_line_error(HttpLLMZeroShot(server.url(), "m", progress=False))
    assert f"choices[0].message.content is a {type(content).__name__}, not text" in text


@pytest.mark.parametrize("data,expected", [(b"not json", "reply is not JSON"), (b"\xff\xfe", "reply is not JSON"),
                                           (b"[1, 2]", "reply has no choices[0].message.content"),
                                           (b'"Yes"', "reply has no choices[0].message.content"),
                                           (b'{"choices": []}', "reply has no choices[0].message.content"),
                                           (b'{"choices": [{"message": null}]}', "reply has no choices")])
def test_a_malformed_reply_is_a_one_line_error(data, expected, endpoints):
    server = endpoints(lambda handler: send(handler, 200, data))
    assert expected in one_line_error(HttpLLMZeroShot(server.url(), "m", progress=False))


def test_an_endpoint_that_always_says_i_think_so_fails_and_says_why(endpoints):
    server = endpoints(chat("I think so"))
    clf = HttpLLMZeroShot(server.url(), "m", progress=False)
    text = one_line_error(clf, PAIR * 8)
    assert clf.unparsed == 8 and clf.unparsed_fraction == 1.0
    assert "8 of 8 replies (100%) were neither yes nor no (e.g. 'I think so')" in text
    assert "baselines.zero_shot.max_unparsed = 0.5" in text


@pytest.mark.parametrize("replies,max_unparsed,fraction,fails", [
    (["Yes", "No", "Yes", "No"], 0.5, 0.0, False),
    (["Yes", "No", "maybe", "No"], 0.5, 0.25, False),
    (["Yes", "maybe", "maybe", "No"], 0.5, 0.5, False),  # at the threshold is still fine
    (["maybe", "maybe", "maybe", "No"], 0.5, 0.75, True),
    (["I think so"] * 4, 1.0, 1.0, False),
    (["Yes", "No", "maybe", "No"], 0.0, 0.25, True),
    ([None, "Yes", "Yes", "Yes"], 0.5, 0.25, False),  # a null content is an unparsed reply
])
def test_the_unparsed_share_is_recorded_and_bounded(replies, max_unparsed, fraction, fails, endpoints):
    queue = list(replies)
    server = endpoints(lambda handler: chat(queue.pop(0))(handler))
    clf = HttpLLMZeroShot(server.url(), "m", max_unparsed=max_unparsed, progress=False)
    pairs = [Example(f"s{i}", "t", 1, uid=str(i)) for i in range(4)]
    if fails:
        one_line_error(clf, pairs)
    else:
        labels = clf.predict(pairs)
        assert labels == [int(r in ("Yes",)) for r in replies]  # unparsed counts as No
    assert clf.unparsed_fraction == fraction and clf.unparsed == round(fraction * 4)


def test_build_zero_shot_passes_max_unparsed_and_timeout_s(monkeypatch):
    monkeypatch.setenv("RESTLM_FUZZ_KEY", KEY)
    clf = build_zero_shot({"backend": "http", "url": "https://h.example/v1", "model": "m",
                           "api_key_env": "RESTLM_FUZZ_KEY", "max_unparsed": 0.0, "timeout_s": 2.5})
    assert (clf.max_unparsed, clf.timeout_s, clf.api_key) == (0.0, 2.5, KEY)
    default = build_zero_shot({"backend": "http", "url": "https://h.example/v1", "model": "m", "api_key_env": None})
    assert (default.max_unparsed, default.timeout_s, default.api_key) == (0.5, 60.0, None)


# ---------------------------------------------------------------- config checks, before anything runs


HTTP = {"backend": "http", "url": "https://api.example/v1", "model": "m", "api_key_env": None}
BAD_CONFIGS = [
    ({"backend": "gpt"}, "backend"),
    ({"backend": "local", "modle": "x"}, "modle"),
    ({"backend": "none", "prompt": "{sentence1} {text}"}, "prompt"),
    ({"backend": "local", "prompt": "{0} {1}"}, "prompt"),
    ({"backend": "local", "prompt": "{sentence1"}, "prompt"),
    ({"backend": "local", "prompt": "{sentence1.x}"}, "prompt"),
    ({"backend": "local", "prompt": "{sentence1[0]} {sentence2}"}, "prompt"),
    ({"backend": "local", "prompt": "{sentence1} {}"}, "prompt"),
    ({"backend": "local", "prompt": 5}, "prompt"),
    ({"backend": "local", "model": ""}, "model"),
    ({"backend": "local", "model": 3}, "model"),
    ({**HTTP, "model": None}, "model"),
    ({**HTTP, "url": None}, "url"),
    ({**HTTP, "url": "api.example/v1"}, "url"),
    ({**HTTP, "url": "127.0.0.1:8080/v1"}, "url"),
    ({**HTTP, "url": "localhost:8080/v1"}, "url"),
    ({**HTTP, "url": "ftp://api.example/v1"}, "url"),
    ({**HTTP, "url": "file:///etc/passwd"}, "url"),
    ({**HTTP, "url": "http://"}, "url"),
    ({**HTTP, "url": "http:///v1"}, "url"),
    ({**HTTP, "url": "http://h:99999/v1"}, "url"),
    ({**HTTP, "url": "http://h:port/v1"}, "url"),
    ({**HTTP, "url": "http://h /v1"}, "url"),
    ({**HTTP, "url": 8080}, "url"),
    ({**HTTP, "api_key_env": "RESTLM_FUZZ_UNSET"}, "api_key_env"),
    ({**HTTP, "max_unparsed": 1.5}, "max_unparsed"),
    ({**HTTP, "max_unparsed": -0.1}, "max_unparsed"),
    ({**HTTP, "max_unparsed": "half"}, "max_unparsed"),
    ({**HTTP, "max_unparsed": float("nan")}, "max_unparsed"),
    ({**HTTP, "timeout_s": 0}, "timeout_s"),
    ({**HTTP, "timeout_s": -5}, "timeout_s"),
    ({**HTTP, "timeout_s": float("inf")}, "timeout_s"),
    ({**HTTP, "timeout_s": True}, "timeout_s"),
    ({"backend": "local", "batch_size": 0}, "batch_size"),
    ({"backend": "local", "batch_size": 2.5}, "batch_size"),
    ({**HTTP, "max_tokens": "5"}, "max_tokens"),
    ({"backend": "local", "model": "/nonexistent/restlm-model"}, "model"),
    ({"backend": "local", "model": "./restlm-no-such-model"}, "model"),
    ({"backend": "local", "model": str(Path(__file__).parent)}, "model"),  # a folder, no config.json
]


@pytest.mark.parametrize("cfg,key", BAD_CONFIGS, ids=[f"{i}-{key}" for i, (_, key) in enumerate(BAD_CONFIGS)])
def test_check_zero_shot_names_the_bad_key(cfg, key, monkeypatch):
    monkeypatch.delenv("RESTLM_FUZZ_UNSET", raising=False)
    with pytest.raises(ConfigError) as info:
        check_zero_shot(cfg)
    assert info.value.key == f"baselines.zero_shot.{key}"
    assert "\n" not in str(info.value) and f"'baselines.zero_shot.{key}'" in str(info.value)


GOOD_CONFIGS = [{}, {"backend": "none", "url": None}, {"backend": "local", "model": "smollm2"},
                HTTP, {**HTTP, "url": "http://127.0.0.1:8080"}, {**HTTP, "url": "http://[::1]:8080/v1/"},
                {**HTTP, "max_unparsed": 0, "timeout_s": 0.5, "max_tokens": 3},
                {**HTTP, "api_key_env": "RESTLM_FUZZ_SET"}]


@pytest.mark.parametrize("cfg", GOOD_CONFIGS)
def test_check_zero_shot_accepts_good_configs(cfg, monkeypatch):
    monkeypatch.setenv("RESTLM_FUZZ_SET", KEY)
    assert check_zero_shot(cfg) is None


def test_the_config_dataclass_passes_its_own_check():
    import dataclasses

    from restlm.config.sections import ZeroShotConfig

    cfg = dataclasses.asdict(ZeroShotConfig())
    check_zero_shot({**cfg, "backend": "local"})
    assert (cfg["max_unparsed"], cfg["timeout_s"]) == (0.5, 60.0)


@pytest.mark.parametrize("make,error", [("missing path", ConfigError), ("folder without config.json", ConfigError),
                                        ("not a model", ModelLoadError)])
def test_an_unloadable_local_model_is_a_one_line_error(make, error, tmp_path):
    # the first two the disk shows, so check_zero_shot (before the run directory) already refuses them
    path = tmp_path / "model"
    if make != "missing path":
        path.mkdir()
    if make == "not a model":
        (path / "config.json").write_text("{not json")
    cfg = {"backend": "local", "model": str(path)}
    if error is ConfigError:
        with pytest.raises(ConfigError, match="baselines.zero_shot.model"):
            check_zero_shot(cfg)
    with pytest.raises(error) as info:
        build_zero_shot(cfg)
    assert "\n" not in str(info.value) and str(path) in str(info.value)
