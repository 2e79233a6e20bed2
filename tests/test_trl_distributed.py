"""SFT and DPO through TRL on two processes against one: a tiny random Llama trained by name with
`restlm.sft.sft` then `restlm.dpo.dpo` (16 rows each, global batch 4) in a small script, run plainly
and under `accelerate launch` with 2 CPU processes (gloo), side by side.

`batch_size` is the global batch (2 rows per process here), so both runs take the same 4 steps
over the same rows: the logged losses must agree to 1e-4 relative and the saved weights closely;
only the main process saves (TRL's trainer would let each process write the same folder).
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from safetensors.torch import load_file

from helpers import build_once, cli_env, launch_two
from tiny_models import save_tiny

SCRIPT = '''
import json, random, sys
from pathlib import Path

from restlm.data.examples import Example
from restlm.data.preferences import PreferencePair
from restlm.distributed import process_state
from restlm.dpo import DpoConfig, dpo
from restlm.sft import SftConfig, sft

model, out = sys.argv[1], Path(sys.argv[2])
rng = random.Random(0)
words = "the cat sat on the mat dog ran in park bird flew over tree Yes No Answer".split()
examples = [Example(" ".join(rng.sample(words, 4)), target=" ".join(rng.sample(words, 3))) for _ in range(16)]
pairs = [PreferencePair(" ".join(rng.sample(words, 4)), " " + " ".join(rng.sample(words, 3)),
                        " " + " ".join(rng.sample(words, 2))) for _ in range(16)]
result = {"processes": process_state().num_processes}
for name, run, rows, cfg in (("sft", sft, examples, SftConfig(batch_size=4, learning_rate=1e-3, max_length=64)),
                             ("dpo", dpo, pairs, DpoConfig(batch_size=4, learning_rate=1e-3, max_length=64))):
    stats = run(model, rows, cfg, out=out / name)
    result[name] = {"steps": stats.steps, "losses": stats.losses}
    model = str(out / name)  # DPO starts from the SFT model
if process_state().is_main_process:
    (out / "result.json").write_text(json.dumps(result))
'''


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The script on one process and on two (once per session, shared by xdist workers)."""
    def build(folder):
        model = save_tiny(folder / "llama", chat=False)
        script = folder / "sft_then_dpo.py"
        script.write_text(SCRIPT)
        two = launch_two([str(model), str(folder / "two")], program=(str(script),))
        one = subprocess.Popen([sys.executable, str(script), str(model), str(folder / "one")], env=cli_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _, err_two = two.communicate(timeout=300)
        _, err_one = one.communicate(timeout=300)
        assert one.returncode == 0, err_one[-3000:]
        assert two.returncode == 0, err_two[-3000:]

    folder = build_once(tmp_path_factory, "trl_distributed", build)
    return {"folder": folder, "one": json.loads((folder / "one" / "result.json").read_text()),
            "two": json.loads((folder / "two" / "result.json").read_text())}


@pytest.mark.parametrize("name", ["sft", "dpo"])
def test_losses_match_one_process(runs, name):
    assert (runs["one"]["processes"], runs["two"]["processes"]) == (1, 2)
    one, two = runs["one"][name], runs["two"][name]
    assert one["steps"] == two["steps"] == 4  # 16 rows in global batches of 4, whatever the process count
    assert two["losses"] == pytest.approx(one["losses"], rel=1e-4)
    assert len(set(one["losses"])) > 1  # the losses move, so the check above can fail


@pytest.mark.parametrize("name", ["sft", "dpo"])
def test_saved_weights_match_one_process(runs, name):
    folder = runs["folder"]
    one, two = (load_file(folder / run / name / "model.safetensors") for run in ("one", "two"))
    start = load_file(folder / ("llama" if name == "sft" else "one/sft") / "model.safetensors")
    assert set(one) == set(two) == set(start)
    moved = max(float((one[k] - start[k]).abs().max()) for k in start)
    gap = max(float((one[k] - two[k]).abs().max()) for k in one)
    assert moved > 1e-4 and gap < 1e-5, (moved, gap)  # trained, and to the same weights


def test_the_sft_command_on_two_processes_publishes_one_folder(tmp_path):
    """`restlm sft` under accelerate launch: every process trains, only the main one writes --out and prints."""
    model = save_tiny(tmp_path / "llama")
    data = tmp_path / "sft.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"say {w}", "completion": w}) + "\n"
                            for w in "cat dog bird tree park mat sat ran".split()))
    out = tmp_path / "sft"
    run = launch_two(["sft", "--model", str(model), "--data", str(data), "--out", str(out), "--batch-size", "4",
                      "--learning-rate", "1e-3", "--max-length", "64"])
    stdout, stderr = run.communicate(timeout=300)
    assert run.returncode == 0, stderr[-3000:]
    assert stdout.count("sft: model and metrics.json in") == 1
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["rows"], metrics["steps"]) == (8, 2)
    assert {"config.json", "model.safetensors"} <= {p.name for p in out.iterdir()}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging folder left
