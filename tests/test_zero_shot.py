"""Zero-shot baseline: Yes/No scoring on a tiny Llama, the HTTP client on a local server, config."""
from __future__ import annotations

import csv
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from restlm.data.examples import Example
from restlm.errors import ConfigError, RestlmError
from restlm.zero_shot import (DEFAULT_PROMPT, HttpLLMZeroShot, LocalLLMZeroShot, build_zero_shot,
                              fill_prompt, parse_yes_no)
from tiny_models import save_tiny, tiny_llama, tiny_tokenizer

PAIRS = [Example("the cat sat on the mat.", "a cat was on the mat.", 1, uid="a"),
         Example("the dog ran in the park", "the bird flew over the same tree", 0, uid="b"),
         Example("Yes", "No", 0, uid="c"),
         Example("the cat sat on the mat and the dog ran in the park.", "the cat sat.", 1, uid="d"),
         Example("a", "b", 0, uid="e")]


# ---------------------------------------------------------------- local backend


@pytest.fixture(scope="module")
def tiny_clf():
    tok = tiny_tokenizer()
    return LocalLLMZeroShot(prompt=DEFAULT_PROMPT, batch_size=2, model=tiny_llama(len(tok)),
                            tokenizer=tok, progress=False)


def test_predict_is_01_of_right_length_and_deterministic(tiny_clf):
    preds = tiny_clf.predict(PAIRS)
    assert len(preds) == len(PAIRS) and set(preds) <= {0, 1}
    assert tiny_clf.predict(PAIRS) == preds
    assert preds == [int(s > 0) for s in tiny_clf.scores(PAIRS)]


def test_render_uses_chat_template(tiny_clf):
    text = tiny_clf.render(PAIRS[0])
    assert text == f"<|im_start|>user\n{fill_prompt(DEFAULT_PROMPT, PAIRS[0])}<|im_end|>\n<|im_start|>assistant\n"
    assert "Sentence 1: the cat sat on the mat. Sentence 2: a cat was on the mat.." in text


def test_yes_no_ids_are_single_token_variants(tiny_clf):
    tok = tiny_clf.tokenizer
    assert tok.encode("Yes", add_special_tokens=False)[0] in tiny_clf.yes_ids
    assert tok.encode("No", add_special_tokens=False)[0] in tiny_clf.no_ids
    assert not set(tiny_clf.yes_ids) & set(tiny_clf.no_ids)


def test_scores_match_an_unpadded_forward_whatever_the_batch(tiny_clf):
    """Left padding must not change a pair's score: compare with each pair run alone."""
    batched = tiny_clf.scores(PAIRS)
    for ex, score in zip(PAIRS, batched):
        ids = tiny_clf.tokenizer(tiny_clf.render(ex), return_tensors="pt", add_special_tokens=False)
        with torch.no_grad():
            logp = torch.log_softmax(tiny_clf.model(**ids).logits[0, -1], dim=-1)
        expected = torch.logsumexp(logp[tiny_clf.yes_ids], 0) - torch.logsumexp(logp[tiny_clf.no_ids], 0)
        assert score == pytest.approx(expected.item(), abs=1e-4)


class KeywordLM(torch.nn.Module):
    """A stand-in LM that says Yes (logit +3 on 'Yes', 0 on 'No') iff the input holds `keyword_id`."""

    def __init__(self, vocab: int, keyword_id: int, yes_id: int, no_id: int):
        super().__init__()
        self.vocab, self.keyword_id, self.yes_id, self.no_id = vocab, keyword_id, yes_id, no_id
        self.device = torch.device("cpu")

    def forward(self, input_ids, attention_mask, position_ids, logits_to_keep):
        logits = torch.full((input_ids.shape[0], 1, self.vocab), -10.0)
        hit = ((input_ids == self.keyword_id) & attention_mask.bool()).any(-1)
        logits[:, 0, self.yes_id] = torch.where(hit, 3.0, 0.0)
        logits[:, 0, self.no_id] = 0.0
        return SimpleNamespace(logits=logits)


def test_predictions_follow_yes_no_probabilities():
    tok = tiny_tokenizer(chat=False)
    yes, no = (tok.encode(w, add_special_tokens=False)[0] for w in (" Yes", " No"))
    keyword = tok.encode(" cat", add_special_tokens=False)[0]
    clf = LocalLLMZeroShot(model=KeywordLM(len(tok), keyword, yes, no), tokenizer=tok,
                           batch_size=3, progress=False)
    assert clf.render(PAIRS[0]).endswith("Answer with 'Yes' or 'No'.\nAnswer:")  # no chat template
    assert clf.predict(PAIRS) == [1, 0, 0, 1, 0]


def test_local_backend_from_a_saved_folder(tmp_path):
    clf = build_zero_shot({"backend": "local", "model": str(save_tiny(tmp_path)), "batch_size": 4})
    assert isinstance(clf, LocalLLMZeroShot) and clf.batch_size == 4
    assert len(clf.predict(PAIRS[:3])) == 3


# ---------------------------------------------------------------- HTTP backend


class FakeOpenAI(BaseHTTPRequestHandler):
    """Answers like an OpenAI chat endpoint; the reply depends on the first sentence."""

    requests: list = []
    replies = {"alpha": "Yes, they are.", "beta": "**No**", "gamma": "I cannot tell."}

    def do_POST(self):  # noqa: N802 - the http.server name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FakeOpenAI.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
        content = body["messages"][0]["content"]
        if "fail" in content:
            return self._send(500, {"error": {"message": "model overloaded"}})
        key = next((k for k in self.replies if k in content), "gamma")
        self._send(200, {"choices": [{"message": {"role": "assistant", "content": self.replies[key]}}]})

    def _send(self, status: int, payload: dict):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):  # keep test output quiet
        pass


@pytest.fixture
def server():
    FakeOpenAI.requests = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeOpenAI)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_http_predictions_and_request_body(server):
    clf = HttpLLMZeroShot(server + "/v1/", "tiny-chat", api_key="sk-test", progress=False)
    pairs = [Example("alpha", "x"), Example("beta", "y"), Example("gamma", "z")]
    assert clf.predict(pairs) == [1, 0, 0]
    assert clf.unparsed == 1
    first = FakeOpenAI.requests[0]
    assert first["path"] == "/v1/chat/completions" and first["auth"] == "Bearer sk-test"
    assert first["body"]["model"] == "tiny-chat" and first["body"]["temperature"] == 0
    assert first["body"]["max_tokens"] <= 10
    assert first["body"]["messages"] == [{"role": "user", "content": DEFAULT_PROMPT.format(sentence1="alpha", sentence2="x")}]


def test_http_full_endpoint_url_and_custom_prompt(server):
    clf = HttpLLMZeroShot(server + "/chat/completions", "m", prompt="Same? {sentence1} | {sentence2}",
                          progress=False)
    assert clf.predict([Example("alpha", "x")]) == [1] and clf.unparsed == 0
    assert FakeOpenAI.requests[0]["path"] == "/chat/completions"
    assert FakeOpenAI.requests[0]["auth"] is None
    assert FakeOpenAI.requests[0]["body"]["messages"][0]["content"] == "Same? alpha | x"


def test_http_server_error_is_one_line_naming_url(server):
    clf = HttpLLMZeroShot(server + "/v1", "m", progress=False)
    with pytest.raises(RestlmError) as info:
        clf.predict([Example("please fail", "x")])
    text = str(info.value)
    assert f"{server}/v1/chat/completions" in text and "500" in text and "model overloaded" in text
    assert "\n" not in text


def test_http_unreachable_is_restlm_error(server):
    closed = HttpLLMZeroShot("http://127.0.0.1:9/v1", "m", timeout_s=5, progress=False)
    with pytest.raises(RestlmError, match="127.0.0.1:9/v1/chat/completions"):
        closed.predict([Example("alpha", "x")])


@pytest.mark.parametrize("reply,label", [("Yes", 1), ("yes.", 1), (" **No**", 0), ("'No', they differ", 0),
                                         ("YES!", 1), ("Not sure", None), ("Nope", None), ("", None),
                                         ("The answer is yes", None)])
def test_parse_yes_no(reply, label):
    assert parse_yes_no(reply) == label


# ---------------------------------------------------------------- config


def test_build_zero_shot_from_config(monkeypatch):
    assert build_zero_shot({}) is None
    assert build_zero_shot({"backend": "none"}) is None
    monkeypatch.setenv("MY_KEY", "sk-1")
    clf = build_zero_shot({"backend": "http", "url": "http://h/v1", "model": "m", "api_key_env": "MY_KEY",
                           "prompt": "{sentence1}/{sentence2}", "timeout_s": 3})
    assert isinstance(clf, HttpLLMZeroShot)
    assert (clf.url, clf.api_key, clf.timeout_s, clf.prompt) == ("http://h/v1/chat/completions", "sk-1", 3.0,
                                                               "{sentence1}/{sentence2}")


@pytest.mark.parametrize("cfg,key", [
    ({"backend": "gpt"}, "baselines.zero_shot.backend"),
    ({"backend": "http", "model": "m"}, "baselines.zero_shot.url"),
    ({"backend": "http", "url": "http://h"}, "baselines.zero_shot.model"),
    ({"backend": "http", "url": "http://h", "model": "m", "api_key_env": "RESTLM_TEST_UNSET"},
     "baselines.zero_shot.api_key_env"),
    ({"backend": "none", "prompt": "{sentence1} {text}"}, "baselines.zero_shot.prompt"),
    ({"backend": "local", "modle": "x"}, "baselines.zero_shot.modle"),
])
def test_build_zero_shot_config_errors(cfg, key, monkeypatch):
    monkeypatch.delenv("RESTLM_TEST_UNSET", raising=False)
    with pytest.raises(ConfigError) as info:
        build_zero_shot(cfg)
    assert info.value.key == key


# ---------------------------------------------------------------- real model, real data


def mrpc_dev(n: int) -> list[Example]:
    root = Path(os.environ.get("RESTLM_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")
    path = root / "mrpc" / "dev.tsv"
    if not path.is_file():
        pytest.skip(f"no MRPC data at {path}")
    with open(path, encoding="utf-8-sig", newline="") as f:  # the file starts with a BOM
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    assert len(rows) == 408
    return [Example(r["#1 String"], r["#2 String"], int(r["Quality"]), uid=f"{r['#1 ID']}-{r['#2 ID']}")
            for r in rows[:n]]


@pytest.mark.real
def test_smollm2_zero_shot_on_mrpc_dev():
    from restlm.causal_lm import load_causal_lm, resolve_causal_lm

    examples = mrpc_dev(16)
    clf = LocalLLMZeroShot("smollm2", batch_size=8, progress=False)  # converts the GGUF if not cached
    cached = resolve_causal_lm("smollm2")  # the safetensors cache, not the GGUF again (its load time: benchmarks/)
    assert (Path(cached) / "model.safetensors").exists() and load_causal_lm("smollm2")[0].config.model_type == "llama"
    assert clf.use_chat and len(clf.yes_ids) == 4 and len(clf.no_ids) == 4
    assert clf.render(examples[0]).endswith("Answer with 'Yes' or 'No'.<|im_end|>\n<|im_start|>assistant\n")
    preds = clf.predict(examples)
    assert len(preds) == 16 and set(preds) <= {0, 1}
