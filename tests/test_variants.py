"""Variants of a method (`variants:`): refused in one line naming the key when the method is unknown, a value
lies outside the sections the method reads, or is invalid; in `restlm compare`, a variant runs its method with
its values from the same start, is reported beside it with gold paired against SFT and ReST, and can be added
to a finished comparison (only it runs), while changing one that ran is refused."""
from __future__ import annotations

import json

import pytest
import yaml
from helpers import set_args, stderr_lines
from test_compare_tasks import FAST

from restlm import cli
from restlm import run_layout as layout
from restlm.atomic_files import read_jsonl
from restlm.config import load_config
from restlm.errors import ConfigError
from restlm.methods.variants import config_for


@pytest.mark.parametrize("variant, key, message", [
    ({"rest": {"reward": "correct"}}, "variants.v.method", "name the method it varies"),
    ({"method": "nope"}, "variants.v.method", "name the method it varies"),
    ({"method": "rest", "data": {"path": "x"}}, "variants.v.data.path", "rest reads only rest, train"),
    ({"method": "ppo", "train": {"epochs": 2}}, "variants.v.train.epochs", "ppo reads only ppo, rest.reward"),
    ({"method": "rest", "rest": {"threshold": "bogus"}}, "variants.v.rest.threshold", "must be one of"),
    ({"method": "rest", "rest": {"improve_steps": "two"}}, "variants.v.rest.improve_steps", "expected int"),
    ({"method": "rest", "rest": {"nope": 1}}, "variants.v.rest.nope", "unknown key"),
    ({"method": "rest_em", "rest": {"max_kept_per_input": 3}}, "variants.v.rest.max_kept_per_input", "sets this itself"),
    ({"method": "rest_gold", "rest": {"loss": "bc"}}, "variants.v.rest.loss", "sets this itself"),
    ({"method": "rest", "rest": {"preset": "rest_em"}}, "variants.v.rest.preset", "sets this itself"),
    ({"method": "sft", "train": {"epochs": 2}}, "variants.v.train.epochs", "sets this itself"),
])
def test_a_bad_variant_is_one_error_naming_its_key(variant, key, message):
    with pytest.raises(ConfigError) as error:
        load_config(overrides=[f"variants.v={json.dumps(variant)}"])
    assert error.value.key == key and message in error.value.message


@pytest.mark.parametrize("name", ["rest", "start", "final", "A", "a/b", "2x"])
def test_a_variant_may_not_take_a_methods_name_a_stage_name_or_a_path(name, tmp_path):
    (tmp_path / "task.yaml").write_text(yaml.safe_dump({"variants": {name: {"method": "rest"}}}))
    with pytest.raises(ConfigError, match="cannot name a variant") as error:
        load_config(tmp_path / "task.yaml")
    assert error.value.key == f"variants.{name}"


def test_a_variant_changes_only_its_values():
    config = load_config(overrides=['variants.v={"method": "rest", "rest": {"reward": "correct", "lr_decay": 0.9}}'])
    varied = config_for(config, "v")
    assert (varied.rest.reward, varied.rest.lr_decay) == ("correct", 0.9)
    assert (config.rest.reward, config.rest.lr_decay) == ("nll", 0.5)
    assert varied.train == config.train and varied.variants == {} and config_for(config, "rest") is config


def test_compare_runs_variants_beside_their_method_and_adds_new_ones_later(tiny_model_dir, tiny_data, tmp_path, capfd,
                                                                          monkeypatch):
    variants = {"rest_correct": {"method": "rest", "rest": {"reward": "correct"}},
                "rest_all": {"method": "rest", "rest": {"original_data": "all"}}}
    task = tmp_path / "task.yaml"
    # rest_all is in the config, not in --methods: not recorded, so it may still change before it runs
    task.write_text(yaml.safe_dump({"variants": {**variants, "rest_all": {"method": "rest", "rest": {"lr_decay": 0.7}}}}))
    overrides = [f"model.name={tiny_model_dir}", "model.max_length=32", "data.source=file",
                 f"data.train={tiny_data['train']}", f"data.dev={tiny_data['dev']}", "data.validation_fraction=0.25",
                 "train.epochs=1", "train.batch_size=8", "train.learning_rate=0.01", "rest.grow_steps=1",
                 "rest.improve_steps=1", "rest.grow_sizes=[8]", "rest.improve_learning_rate=0.01", *FAST]
    out = tmp_path / "out"

    def compare(methods: str) -> dict:
        code = cli.main(["compare", "--task", str(task), *set_args(overrides), "--methods", methods,
                         "--bootstrap", "50", "--eval-samples", "1", "--out", str(out)])
        assert code == 0, capfd.readouterr().err[-3000:]
        return {m["method"]: m for m in json.loads((out / "compare.json").read_text())["methods"]}

    first = compare("sft,rest,rest_correct")
    assert list(first) == ["sft", "rest", "rest_correct"]
    assert first["rest"]["by_seed"][0]["settings"]["reward"] == "nll"
    assert first["rest_correct"]["by_seed"][0]["settings"]["reward"] == "correct"
    state = json.loads((out / "state.json").read_text())["stages"]
    grown = {name: read_jsonl(out / state[layout.grow_stage(layout.method_prefix(0, name), 1)]["grown_file"])
             for name in ("rest", "rest_correct")}
    assert {row["reward"] for row in grown["rest_correct"]} <= {0.0, 1.0}  # the variant's reward reached its Grow step
    assert not {row["reward"] for row in grown["rest"]} <= {0.0, 1.0}  # the task's own: nll
    assert json.loads((out / "config.json").read_text())["experiment"]["variants"] == \
        {"rest_correct": variants["rest_correct"]}
    for name in ("rest", "rest_correct"):  # the same start, paired against it
        assert first[name]["by_seed"][0]["steps"][0] == first["sft"]["by_seed"][0]["steps"][0]
        low, high = first[name]["gold_minus_sft_ci95"]
        assert low <= first[name]["gold_minus_sft"] <= high
    assert first["sft"]["gold_minus_sft_ci95"] is None
    assert "gold − SFT, 95% CI" in (out / "compare.md").read_text()

    # a variant named later runs alone, with its values of then; the finished ones are kept as they were
    task.write_text(yaml.safe_dump({"variants": variants}))
    capfd.readouterr()
    second = compare("sft,rest,rest_correct,rest_all")
    assert "== seed 0: rest_all" in capfd.readouterr().out
    assert second["rest_all"]["by_seed"][0]["settings"]["original_data"] == "all"
    for name in ("sft", "rest", "rest_correct"):
        assert second[name]["by_seed"][0] == first[name]["by_seed"][0]
    assert json.loads((out / "config.json").read_text())["experiment"]["variants"] == variants
    # benchmarks/mrpc_variants.py's summary of such a comparison
    from restlm.presets import compare_benchmark
    from restlm.presets.mrpc_variants import markdown, summarise

    # the benchmark screen's path: the same comparison resumed through `compare_benchmark`, then published
    monkeypatch.chdir(tmp_path)  # compare_benchmark moves to the root it is given
    code = compare_benchmark([*set_args(overrides), "--bootstrap", "50"], "doc\n", tmp_path,
                             str(task), str(out), "sft,rest,rest_correct,rest_all", 1, str(tmp_path / "results"),
                             summarise, markdown)
    assert code == 0 and "== seed" not in capfd.readouterr().out  # nothing left to run
    summary = json.loads((tmp_path / "results.json").read_text())
    assert (tmp_path / "results.md").read_text() == markdown(summary)
    rows = {m["method"]: m for m in summary["methods"]}
    assert rows["rest_all"]["changes"] == {"rest": {"original_data": "all"}} and rows["rest"]["changes"] == {}
    for name, row in rows.items():
        assert row["dev_accuracy"] == second[name]["gold"] and row["minus_sft"] == second[name].get("gold_minus_sft")
        steps = second[name]["by_seed"][0]["steps"]
        assert row["dev_picked_dev_accuracy"] == max(s["dev_accuracy"] for s in steps) >= row["dev_accuracy"] - 1e-12
        assert 0 <= row["predicted_positive"] <= 1
    rest_steps = second["rest"]["by_seed"][0]["steps"]
    assert [(g["N"], g["step"], g["dev_accuracy"]) for g in summary["grid"]] == \
        [(8, s["step"], s["dev_accuracy"]) for s in rest_steps]
    assert summary["goal"]["met"] is False  # one seed: the goal asks for five
    assert "| rest_all | rest: {\"original_data\": \"all\"} |" in markdown(summary)
    # benchmarks/mrpc_smollm2_classifier.py's rows: one per method of each setting's comparison, MiniLM's beside
    from restlm.presets import mrpc_backbones

    backbones = mrpc_backbones.summarise({"full": out, "lora": tmp_path / "not_run"}, minilm=tmp_path / "results.json")
    assert [(r["setting"], r["method"], r["dev_accuracy"]) for r in backbones["rows"]] == \
        [("full", m["method"], m["dev_accuracy"]) for m in summary["methods"]]
    assert backbones["minilm_sft"]["dev_accuracy"] == rows["sft"]["dev_accuracy"] and list(backbones["commands"]) == ["full"]
    assert f"| full | rest | — | {backbones['rows'][0]['learning_rate']:g} |" in mrpc_backbones.markdown(backbones)
    # changing a variant that ran is refused, in one line
    task.write_text(yaml.safe_dump({"variants": {**variants, "rest_all": {"method": "rest"}}}))
    capfd.readouterr()
    assert cli.main(["compare", "--task", str(task), *set_args(overrides), "--methods", "sft,rest_all",
                     "--bootstrap", "50", "--eval-samples", "1", "--out", str(out)]) == 2
    (line,) = stderr_lines(capfd.readouterr().err)
    assert "holds a comparison with other settings (experiment.variants.rest_all.rest)" in line, line


def test_a_variant_the_task_cannot_run_or_missing_what_it_needs_is_refused_before_anything_is_written(
        tiny_model_dir, tiny_data, tmp_path, capfd):
    task = tmp_path / "task.yaml"
    task.write_text(yaml.safe_dump({"variants": {"rest_kl": {"method": "rest", "rest": {"improve_kl_coef": 0.1}},
                                                 "bc_more": {"method": "bc_matched", "rest": {"lr_decay": 0.9}}}}))
    overrides = [f"model.name={tiny_model_dir}", "model.max_length=32", "data.source=file",
                 f"data.train={tiny_data['train']}", f"data.dev={tiny_data['dev']}", "data.validation_fraction=0.25",
                 *FAST]
    for methods, expected in (("sft,rest_kl", "config key 'variants.rest_kl.rest.improve_kl_coef': needs a causal"),
                              ("sft,bc_more", "--methods: bc_more reads the records of rest: add it")):
        out = tmp_path / methods.replace(",", "_")
        capfd.readouterr()
        assert cli.main(["compare", "--task", str(task), *set_args(overrides), "--methods", methods,
                         "--out", str(out)]) == 2
        (line,) = stderr_lines(capfd.readouterr().err)
        assert expected in line and not out.exists()
