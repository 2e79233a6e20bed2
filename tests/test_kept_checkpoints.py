"""`run.checkpoint_dtype`: a finished seed's kept checkpoints rewritten in bfloat16 (the weights rounded, nothing
else changed, the config still float32 so loaders compute in float32, LoRA adapters inside too, atomically, once),
what resume reads left in float32; 'auto' keeps a classifier's float32; and through `restlm run`, where
`restlm evaluate` still scores the best step as the run recorded it."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from accelerate import Accelerator
from transformers import AutoModelForCausalLM

from helpers import safetensors_dtypes as dtypes, set_args, tiny_overrides
from restlm import cli
from restlm import run_layout as layout
from restlm.kept_checkpoints import shrink_folder
from tiny_models import save_tiny


def test_a_saved_model_is_rewritten_in_bf16_with_its_adapter_and_loads(tmp_path):
    folder = save_tiny(tmp_path / "model")
    (folder / "adapter").mkdir()
    torch.save({"unused": 1}, folder / "adapter" / "notes.bin")  # other files are copied as they are
    from safetensors.torch import save_file
    save_file({"lora_A": torch.randn(4, 3), "steps": torch.arange(3)}, str(folder / "adapter" / "adapter.safetensors"))
    before = {**load_file(str(folder / "model.safetensors")),
              **{f"adapter/{k}": v for k, v in load_file(str(folder / "adapter" / "adapter.safetensors")).items()}}
    assert shrink_folder(folder, torch.bfloat16)
    after = {**load_file(str(folder / "model.safetensors")),
             **{f"adapter/{k}": v for k, v in load_file(str(folder / "adapter" / "adapter.safetensors")).items()}}
    assert after.keys() == before.keys()
    for key, value in before.items():
        expected = value.to(torch.bfloat16) if value.dtype == torch.float32 else value  # integers stay
        assert after[key].dtype == expected.dtype and torch.equal(after[key], expected), key
    assert json.loads((folder / "config.json").read_text())["dtype"] == "float32"  # loaders upcast: float32 compute
    assert (folder / "adapter" / "notes.bin").exists() and (folder / "tokenizer.json").exists()
    assert not list(tmp_path.glob(".*"))  # no temp folder left beside it
    assert not shrink_folder(folder, torch.bfloat16)  # nothing float32 left: untouched
    model = AutoModelForCausalLM.from_pretrained(folder)
    assert model.dtype == torch.float32 and torch.equal(model.model.embed_tokens.weight, after["model.embed_tokens.weight"].float())


@pytest.mark.parametrize("dtype", ["bfloat16", "float32", "auto"])
def test_a_finished_run_keeps_its_best_step_in_the_dtype_asked_and_the_start_in_float32(
        dtype, tiny_model_dir, tiny_data, tmp_path, capfd):
    path = tmp_path / "run"
    overrides = tiny_overrides(tiny_model_dir, tiny_data["train"], tiny_data["dev"], path, rest__grow_steps=1,
                               rest__improve_steps=2, rest__grow_sizes="[8]", run__checkpoint_dtype=dtype,
                               run__keep_checkpoints="all")
    assert cli.main(["run", *set_args(overrides)]) == 0
    best = json.loads((path / "results.json").read_text())["best_checkpoints"][0]
    trajectory = path / layout.checkpoint_dir(layout.trajectory(0, 8))
    steps = [p.parent for p in trajectory.rglob("config.json")]
    # 'auto' keeps a classifier's float32 (its accuracy is read exactly)
    assert len(steps) == 2 and all(dtypes(step) == {"BF16" if dtype == "bfloat16" else "F32"} for step in steps)
    sft = path / layout.checkpoint_dir(layout.seed_stage(0, "sft"))
    assert dtypes(sft) == {"F32"}  # a resume with more grow sizes starts here
    capfd.readouterr()
    assert cli.main(["evaluate", str(path)]) == 0
    assert json.loads(capfd.readouterr().out)["scores"][0]["dev_accuracy"] == pytest.approx(best["dev_accuracy"])
    if dtype == "bfloat16":  # a shrunk classifier step loads as a float32 model
        from restlm.policies.classifier import ClassifierPolicy

        loaded = ClassifierPolicy.from_pretrained(str(steps[0]), Accelerator())
        assert loaded.unwrapped.dtype == torch.float32
