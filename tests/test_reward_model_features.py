"""The probe-features benchmark (restlm.presets.reward_model_features) end to end on tiny random backbones: nested
CV of each procedure, features cached and read back, the results' markdown."""
from __future__ import annotations

import json
import random

import pytest

from restlm.presets import reward_model_features as preset
from restlm.reward_models import probe_features as features_module


@pytest.fixture(scope="module")
def models(reward_bert_dir, tied_llama_dir):
    return {"minilm": str(reward_bert_dir), "smollm2": str(tied_llama_dir)}


def longer_chosen_pairs(path, n=40):
    """Pairs whose chosen response is the rejected one and then some: length alone ranks every pair."""
    rng, words = random.Random(0), "the cat sat on a mat red dog ran big fast car road".split()
    with open(path, "w") as f:
        for _ in range(n):
            rejected = " ".join(rng.sample(words, 3))
            row = {"prompt": " ".join(rng.sample(words, 4)), "chosen": rejected + " and " + " ".join(rng.sample(words, 3)),
                   "rejected": rejected}
            f.write(json.dumps(row) + "\n")
    return path


def test_every_procedure_runs_and_length_ranks_pairs_that_differ_in_length(models, tmp_path, monkeypatch):
    data = longer_chosen_pairs(tmp_path / "pairs.jsonl")
    chosen = ["length", "smollm2 logp+length", "minilm last+mean+length", "both ensemble"]
    summary = preset.run(tmp_path / "runs", str(data), chosen, "cmd", models)
    rows = {r["procedure"]: r for r in summary["procedures"]}
    assert list(rows) == chosen and summary["pairs"] == 40
    assert rows["length"]["accuracy"] == 1.0 and rows["length"]["layers_chosen"] == ["length"] * 5
    assert rows["both ensemble"]["accuracy"] >= 0.9  # both members carry the length column
    assert rows["both ensemble"]["members"] == [["minilm", "last+mean+length"], ["smollm2", "last+mean+logp+length"]]
    assert summary["layers"] == {"minilm": [1, 2], "smollm2": [1, 2]}  # depths 0.5, 1 and 0.4, 0.7, 1 of 2 layers
    assert all(r["standard_error"] == pytest.approx((r["accuracy"] * (1 - r["accuracy"]) / 40) ** 0.5) for r in rows.values())
    table = preset.markdown(summary)
    assert "| **both ensemble** |" in table and "nested-CV pairwise accuracy" in table

    def refuse(*args, **kwargs):
        raise AssertionError("features recomputed despite the cache")
    monkeypatch.setattr(features_module, "probe_features", refuse)
    again = preset.run(tmp_path / "runs", str(data), chosen, "cmd", models)
    assert [r["accuracy"] for r in again["procedures"]] == [r["accuracy"] for r in summary["procedures"]]
    assert again["feature_seconds"] == summary["feature_seconds"]  # the seconds recorded when the cache was made


def test_the_scripts_default_names_every_procedure():
    """--procedures is comma-separated: a name with a comma made the script's default refuse itself."""
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "benchmarks" / "reward_model_features.py"
    spec = importlib.util.spec_from_file_location("reward_model_features_script", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert all("," not in name for name in preset.PROCEDURES) and preset.HEADLINE in preset.PROCEDURES
    assert module.chosen_procedures(None) == list(preset.PROCEDURES)
    assert module.chosen_procedures("length, minilm last") == ["length", "minilm last"]
    with pytest.raises(ValueError, match="unknown 'bogus'"):
        module.chosen_procedures("length,bogus")
