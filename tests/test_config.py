"""Config: defaults, `key=value` overrides and their types, and every way a config can be wrong
(unknown key, wrong type, bad choice, malformed file) as a ConfigError naming the key or file:line;
`restlm config` prints the resolved config and exits 2 with one stderr line on a bad key."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from restlm import cli
from restlm.config import ExperimentConfig, load_config, to_dict
from restlm.errors import ConfigError, DataError


def test_defaults_load():
    config = load_config()
    assert isinstance(config, ExperimentConfig)
    assert config.model.name == "minilm"
    assert config.data.source == "glue_folder" and config.data.path == "mrpc"
    assert config.rest.grow_sizes == [100]
    assert config.rest.thresholds == [0.0, 0.7, 0.8, 0.9, 0.95, 0.99]
    assert config.rest.early_stop_patience is None
    assert config.train.learning_rate == 5e-5 and isinstance(config.train.learning_rate, float)


def test_overrides_parse_types():
    config = load_config(None, [
        "rest.grow_steps=4", "train.learning_rate=0.001", "train.weight_decay=0",
        "rest.grow_sizes=[8, null, 100]", "rest.thresholds=[0.5, 1]", "rest.early_stop_patience=2",
        "data.text_pair_column=null", "run.tensorboard=false", "model.name=some/model-id",
        "data.label_set=[neg, pos]",
    ])
    assert config.rest.grow_steps == 4 and type(config.rest.grow_steps) is int
    assert config.train.learning_rate == 0.001
    assert config.train.weight_decay == 0.0 and type(config.train.weight_decay) is float  # int widened to float
    assert config.rest.grow_sizes == [8, None, 100]
    assert config.rest.thresholds == [0.5, 1.0] and all(type(t) is float for t in config.rest.thresholds)
    assert config.rest.early_stop_patience == 2
    assert config.data.text_pair_column is None
    assert config.run.tensorboard is False
    assert config.model.name == "some/model-id"
    assert config.data.label_set == ["neg", "pos"]


def test_later_override_wins_and_file_is_overridden(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("rest:\n  grow_steps: 3\n  improve_steps: 1\ntrain:\n  epochs: 7\n")
    config = load_config(path, ["rest.grow_steps=5", "train.epochs=2", "train.epochs=9"])
    assert (config.rest.grow_steps, config.rest.improve_steps, config.train.epochs) == (5, 1, 9)
    as_json = tmp_path / "c.json"
    as_json.write_text(json.dumps({"rest": {"grow_sizes": [1, None]}}))
    assert load_config(as_json).rest.grow_sizes == [1, None]


@pytest.mark.parametrize("override, key, words", [
    ("rest.nope=1", "rest.nope", "unknown key"),
    ("nope.grow_steps=1", "nope", "unknown key"),
    ("baselines.zero_shot.modle=x", "baselines.zero_shot.modle", "unknown key"),
    ("train.epochs=abc", "train.epochs", "expected int, got str"),
    ("train.epochs=1.5", "train.epochs", "expected int, got float"),
    ("train.learning_rate=true", "train.learning_rate", "expected float, got bool"),
    ("run.histograms=1", "run.histograms", "expected bool, got int"),
    ("rest.grow_sizes=5", "rest.grow_sizes", "expected a list"),
    ("rest.grow_sizes=[1, x]", "rest.grow_sizes[1]", "expected int, got str"),
    ("train=3", "train", "expected a mapping"),
    ("rest.sampling=beam", "rest.sampling", "must be one of argmax, sample"),
    ("rest.threshold=median", "rest.threshold", "must be one of reference, rising, percentile"),
    ("rest.original_data=some", "rest.original_data", "must be one of filtered, all, none"),
    ("baselines.zero_shot.backend=api", "baselines.zero_shot.backend", "must be one of"),
    ("run.seeds=0", "run.seeds", "at least 1"),
    ("rest.lr_decay=0", "rest.lr_decay", "(0, 1]"),
    ("rest.threshold_decay=1", "rest.threshold_decay", "(0, 1)"),
    ("rest.threshold=rising", "rest.threshold", "normalise_reward"),
    ("data.source=file", "data.train", "needs data.train and data.dev"),
    ("no_equals_sign", "no_equals_sign", "key.sub=value"),
])
def test_bad_overrides_name_the_key(override, key, words):
    with pytest.raises(ConfigError) as caught:
        load_config(None, [override])
    assert caught.value.key == key
    message = str(caught.value)
    assert f"'{key}'" in message and words in message
    assert "\n" not in message


def test_exponent_floats_are_floats(tmp_path):
    # PyYAML (YAML 1.1) reads 5e-5 as a string; a float key must still take it
    assert load_config(None, ["train.learning_rate=5e-5"]).train.learning_rate == 5e-5
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  learning_rate: 1e-3\n")
    assert load_config(path).train.learning_rate == 1e-3


def test_integer_label_set():
    assert load_config(None, ["data.label_set=[0, 1]"]).data.label_set in ([0, 1], ["0", "1"])


@pytest.mark.parametrize("overrides, key", [
    (["rest.sampling=sample", "rest.temperature=0"], "rest.temperature"),  # softmax(logits / 0): NaN
    (["rest.grow_sizes=[0]"], "rest.grow_sizes[0]"),  # an empty Grow set: reshape error
    (["train.eval_batch_size=0"], "train.eval_batch_size"),  # range() step 0
    (["rest.improve_epochs=0"], "rest.improve_epochs"),  # an Improve step that trains nothing
    (["rest.improve_kl_coef=-0.1"], "rest.improve_kl_coef"),  # a reward for moving away from the start
])
def test_values_that_cannot_run_are_config_errors(overrides, key):
    with pytest.raises(ConfigError) as caught:
        load_config(None, overrides)
    assert caught.value.key in (key, key.split("[")[0])


@pytest.mark.parametrize("name, text, line", [
    ("bad.yaml", "rest:\n  grow_steps: 2\n  improve_steps: [1, 2\ntrain:\n  epochs: 1\n", (3, 4)),
    ("bad2.yaml", "rest:\n  grow_steps: 2\n   bad: x\n", (3,)),
    ("bad.json", '{\n  "rest": {\n    "grow_steps": 1,\n  }\n}\n', (4,)),
])
def test_malformed_file_names_file_and_line(tmp_path, name, text, line):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(DataError) as caught:
        load_config(path)
    message = str(caught.value)
    assert "malformed config file" in message and "\n" not in message
    assert any(message.startswith(f"{path}:{n}: ") for n in line), message


def test_file_errors(tmp_path):
    with pytest.raises(DataError, match="cannot read config file"):
        load_config(tmp_path / "missing.yaml")
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n- b\n")
    with pytest.raises(DataError, match="must be a mapping of sections"):
        load_config(listed)
    typo = tmp_path / "typo.yaml"
    typo.write_text("rest:\n  grow_stpes: 2\n")
    with pytest.raises(ConfigError) as caught:
        load_config(typo)
    assert caught.value.key == "rest.grow_stpes"


def test_cli_config_prints_resolved_config(capsys):
    assert cli.main(["config", "--set", "rest.grow_steps=3", "--set", "rest.grow_sizes=[8,null]"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["rest"]["grow_steps"] == 3 and printed["rest"]["grow_sizes"] == [8, None]
    resolved = to_dict(load_config(None, ["rest.grow_steps=3", "rest.grow_sizes=[8,null]"]))
    # an MRPC run reads no translation, prompts, generation or PPO section: they are left out
    assert printed == {k: v for k, v in resolved.items()
                       if k not in ("generation", "translation", "prompts", "sentiment", "arithmetic", "ppo", "grpo", "dpo")}
    assert cli.main(["config", "--all", "--set", "rest.grow_steps=3", "--set", "rest.grow_sizes=[8,null]"]) == 0
    assert json.loads(capsys.readouterr().out) == resolved


def test_cli_config_bad_key_exits_2_with_one_line(capsys):
    assert cli.main(["config", "--set", "rest.nope=1"]) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("restlm: error: config key 'rest.nope': unknown key")
    assert captured.out == ""


@pytest.mark.parametrize("path", sorted((Path(__file__).resolve().parent.parent / "configs").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_every_shipped_config_loads_and_validates(path):
    config = load_config(path)
    assert config.task in ("classification", "translation", "prompts", "sentiment", "arithmetic")


def test_a_run_recorded_before_the_generation_engines_resumes_on_hf():
    """New configs sample through `auto`; a config.json written before the section existed ran on hf
    generate, so its resume does too (an explicit engine in the record is kept)."""
    from restlm.config import recorded_config

    assert load_config(None, []).generation.engine == "auto"
    assert recorded_config({"task": "classification"}).generation.engine == "hf"
    assert recorded_config({"generation": {"engine": "ctranslate2"}}).generation.engine == "ctranslate2"
