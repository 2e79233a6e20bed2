"""Checkpoints kept only for reading, in a smaller dtype (`run.checkpoint_dtype`).

A run saves every checkpoint in float32, the dtype it trains in, because resume must continue from exactly the
weights it stopped at. Once a seed is finished, what remains (each method's chosen step, each trajectory's best)
is read only by `restlm evaluate`, `pipeline()` and the user: it is rewritten in bfloat16, half the disk (538 MB
-> 269 MB for SmolLM2-135M). The bf16 inference engines round the weights to bf16 anyway, so their outputs do not
change. The start checkpoint of a comparison stays float32: a method added later starts from it.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from restlm.runs import RunDir, replace_folder

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
CONFIG_DTYPE_KEYS = ("dtype", "torch_dtype")  # transformers 5 writes `dtype`; older configs `torch_dtype`


def shrink_checkpoints(run: RunDir, prefix: str, dtype: str) -> list[str]:
    """Rewrite every checkpoint under `prefix` of the run in `dtype` (float32: leave them); the keys rewritten."""
    folder = run.checkpoint_dir(prefix)
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
    """Rewrite the float32 tensors of a saved model folder (and of the folders inside it) in `dtype`, and its
    config's dtype, atomically (`replace_folder`); False when nothing in it is float32."""
    from safetensors import safe_open

    def float32_inside(path: Path) -> bool:
        with safe_open(str(path), "pt") as f:
            return any(f.get_slice(k).get_dtype() == "F32" for k in f.keys())

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
        elif path.name == "config.json":
            config = json.loads(path.read_text())
            for key in CONFIG_DTYPE_KEYS:
                if config.get(key) == "float32":
                    config[key] = str(dtype).removeprefix("torch.")
            (target / path.name).write_text(json.dumps(config, indent=2) + "\n")
        else:
            shutil.copy2(path, target / path.name)
