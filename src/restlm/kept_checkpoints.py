"""Checkpoints kept only for reading, in a smaller dtype (`run.checkpoint_dtype`).

A run saves every checkpoint in float32, the dtype it trains in, because resume must continue from exactly the
weights it stopped at. Once a seed is finished, what remains (each method's chosen step, each trajectory's kept
steps) is read only by `restlm evaluate`, `pipeline()` and the user: by default a generative policy's is rewritten
in bfloat16, half the disk (514 MB -> 257 MB of weights for SmolLM2-135M). Only the stored tensors change: the
config keeps float32, so every loader computes in float32 on the bf16-rounded weights (the bf16 engines round
them so anyway). A classifier's stay float32 under 'auto' (91 MB for MiniLM; its accuracy is read exactly).
The start checkpoint of a comparison or run stays float32: a method or grow size added later starts from it.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import torch

from restlm.atomic_files import replace_folder
from restlm.runs import RunDir

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
GENERATIVE = ("causal", "seq2seq")


def kept_dtype(setting: str, kind: str) -> str:
    """`run.checkpoint_dtype` for a policy of `kind`: 'auto' is bfloat16 for generative policies, else float32."""
    if setting == "auto":
        return "bfloat16" if kind in GENERATIVE else "float32"
    return setting


def shrink_checkpoints(run: RunDir, prefix: str, setting: str, kind: str) -> list[str]:
    """Rewrite every checkpoint under `prefix` of the run in the dtype `setting` gives for a policy of `kind`
    (float32: leave them); the keys rewritten."""
    dtype, folder = kept_dtype(setting, kind), run.checkpoint_dir(prefix)
    if dtype == "float32" or not run.is_main or not folder.exists():
        return []
    keys = []
    for config in sorted(folder.rglob("config.json")):
        checkpoint = config.parent
        if checkpoint.name.startswith(".") or not any(checkpoint.glob("*.safetensors")):
            continue  # a temp folder, or an adapter folder inside a checkpoint (rewritten with it)
        if shrink_folder(checkpoint, DTYPES[dtype]):
            keys.append(str(checkpoint.relative_to(run.checkpoint_dir(""))))
    return keys


def shrink_folder(folder: Path, dtype: torch.dtype) -> bool:
    """Rewrite the float32 tensors of a saved model folder (and of the folders inside it) in `dtype`, atomically
    (`replace_folder`); False when nothing in it is float32."""
    from safetensors import safe_open

    def float32_inside(path: Path) -> bool:
        with safe_open(str(path), "pt") as f:
            return any(f.get_slice(k).get_dtype() == "F32" for k in f.keys())  # noqa: SIM118 - no __iter__

    if not any(float32_inside(p) for p in folder.rglob("*.safetensors")):
        return False
    replace_folder(folder, lambda tmp: _copy_shrunk(folder, tmp, dtype))
    return True


def _copy_shrunk(source: Path, target: Path, dtype: torch.dtype) -> None:
    from safetensors.torch import load_file, save_file

    target.mkdir(parents=True)
    for path in source.iterdir():
        if path.is_dir():
            _copy_shrunk(path, target / path.name, dtype)
        elif path.suffix == ".safetensors":
            tensors = {k: v.to(dtype) if v.dtype == torch.float32 else v for k, v in load_file(str(path)).items()}
            save_file(tensors, str(target / path.name), metadata={"format": "pt"})
        else:
            shutil.copy2(path, target / path.name)
