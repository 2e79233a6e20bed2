"""A saved classifier names its classes: id2label/label2id come from the data's label set
(GLUE's names for MRPC, a file's label_set as written), so a transformers pipeline() says
"equivalent" where it said LABEL_1."""
from __future__ import annotations

import json

import pytest
from accelerate import Accelerator

from helpers import write_tsv
from restlm.config import DataConfig, load_config
from restlm.data.examples import Example
from restlm.data.label_names import label_names
from restlm.policies.classifier import ClassifierPolicy
from restlm.tasks import build_task


def test_label_names_by_data_source():
    assert label_names(DataConfig()) == ["not_equivalent", "equivalent"]  # the default: MRPC in GLUE form
    assert label_names(DataConfig(source="hub", config="cola")) == ["unacceptable", "acceptable"]
    assert label_names(DataConfig(source="hub", name="someone/else", config="cola")) is None
    assert label_names(DataConfig(source="file", label_set=["different", 1])) == ["different", "1"]
    assert label_names(DataConfig(source="file")) is None  # integer labels: nothing to name them by


@pytest.mark.parametrize("lora", [None, {"r": 2}], ids=["full", "lora"])
def test_saved_mrpc_classifier_has_glue_names(tiny_model_dir, tmp_path, lora):
    """Also when LoRA is merged on save: the merged model's config keeps the names."""
    from transformers import pipeline

    policy = ClassifierPolicy.from_pretrained(str(tiny_model_dir), Accelerator(), max_length=32, lora=lora,
                                              label_names=label_names(DataConfig()))
    policy.save(tmp_path / "ckpt")
    config = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert config["id2label"] == {"0": "not_equivalent", "1": "equivalent"}
    assert config["label2id"] == {"not_equivalent": 0, "equivalent": 1}
    classify = pipeline("text-classification", model=str(tmp_path / "ckpt"), device="cpu")
    out = classify({"text": "a cat sat", "text_pair": "a cat sits"})
    out = out[0] if isinstance(out, list) else out
    predicted = policy.predict([Example("a cat sat", "a cat sits")])[0]
    assert out["label"] == ["not_equivalent", "equivalent"][predicted]


def test_a_file_tasks_policy_saves_its_label_set(tiny_model_dir, tiny_data, tmp_path):
    names = {0: "different", 1: "same"}
    rows = [(a, b, names[int(c)]) for a, b, c in tiny_data["train_rows"]]
    train, dev = write_tsv(tmp_path / "train.tsv", rows), write_tsv(tmp_path / "dev.tsv", rows[:8])
    config = load_config(None, [f"model.name={tiny_model_dir}", "model.max_length=32", "data.source=file",
                                f"data.train={train}", f"data.dev={dev}", "data.label_set=[different,same]"])
    task = build_task(config, Accelerator())
    task.load_data()
    assert {e.label for e in task.train} == {0, 1}
    task.new_policy(0).save(tmp_path / "ckpt")
    saved = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert saved["id2label"] == {"0": "different", "1": "same"}
    assert saved["label2id"] == {"different": 0, "same": 1}
