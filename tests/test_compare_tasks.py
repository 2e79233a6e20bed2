"""`restlm compare` on every built-in task with tiny models: classification (a validation split
selects, dev is held out, PPO and DPO refused), translation (every method, gold corpus BLEU) and
sentiment (the real UCI sentences, tiny classifiers as proxy and gold)."""
from __future__ import annotations

import json

import pytest

from helpers import set_args, stderr_lines
from restlm import cli
from test_translation_task import write_corpus
from tiny_models import save_tiny

FAST = ["baselines.zero_shot.backend=none", "run.histograms=false", "run.tensorboard=false",
        "ppo.total_steps=2", "ppo.batch_size=2", "ppo.mini_batch_size=2", "ppo.ppo_epochs=1", "ppo.eval_every=1",
        "dpo.batch_size=2", "dpo.max_length=256"]


def compare(tmp_path, overrides: list[str], methods: str, capfd, out=None) -> dict:
    out = out or tmp_path / "out"
    (tmp_path / "task.yaml").write_text("{}\n")
    code = cli.main(["compare", "--task", str(tmp_path / "task.yaml"), *set_args(overrides), "--methods", methods,
                     "--eval-samples", "2", "--bootstrap", "100", "--out", str(out)])
    assert code == 0, capfd.readouterr().err[-3000:]
    summary = json.loads((out / "compare.json").read_text())
    assert (out / "compare.html").exists() and (out / "proxy_vs_gold.png").exists()
    return summary


def check_methods(summary: dict, names: list[str]) -> dict:
    by_name = {m["method"]: m for m in summary["methods"]}
    assert list(by_name) == names
    selection = summary["metrics"]["selection"]
    for m in summary["methods"]:
        record = m["by_seed"][0]
        scores = [s[selection] for s in record["steps"]]
        assert record["chosen_step"] == record["steps"][scores.index(max(scores))]["step"]
        assert m["gold_ci95"][0] <= m["gold"] <= m["gold_ci95"][1]
    return by_name


def test_classification_selects_on_a_validation_split_and_reports_dev(tiny_model_dir, tiny_data, tmp_path, capfd):
    overrides = [f"model.name={tiny_model_dir}", "model.max_length=32", "data.source=file",
                 f"data.train={tiny_data['train']}", f"data.dev={tiny_data['dev']}", "data.validation_fraction=0.25",
                 "train.epochs=1", "train.batch_size=8", "train.learning_rate=0.01", "rest.grow_steps=1",
                 "rest.improve_steps=2", "rest.grow_sizes=[8]", "rest.improve_learning_rate=0.01", *FAST]
    summary = compare(tmp_path, overrides, "sft,rest,rest_em", capfd)
    assert summary["metrics"] == {"selection": "val_accuracy", "proxy": "dev_reward", "gold": "dev_accuracy"}
    assert summary["splits"] == {"train": 30, "dev": 16, "validation": 10} and summary["heldout_inputs"] == 16
    by_name = check_methods(summary, ["sft", "rest", "rest_em"])
    assert by_name["rest"]["distinct2"] is None  # labels, not text
    # refused on a classifier, before anything is written
    out = tmp_path / "refused"
    capfd.readouterr()
    assert cli.main(["compare", "--task", str(tmp_path / "task.yaml"), *set_args(overrides), "--methods", "sft,ppo",
                     "--out", str(out)]) == 2
    assert "--methods: ppo trains causal policies" in stderr_lines(capfd.readouterr().err)[0]
    assert not out.exists()


def test_translation_runs_every_method_with_corpus_bleu_as_gold(tmp_path, capfd):
    model = save_tiny(tmp_path / "model")
    overrides = ["task=translation", f"data.root={write_corpus(tmp_path / 'data')}", "data.path=toy",
                 "data.dev_split=val", f"model.name={model}", "train.batch_size=4", "train.eval_batch_size=4",
                 "translation.test_splits=[test]", "translation.out_of_domain=false", "translation.max_new_tokens=6",
                 "translation.system_prompt=null", "rest.grow_steps=1", "rest.improve_steps=1", "rest.grow_sizes=[3]",
                 "rest.samples_per_input=2", "rest.sampling=sample", "rest.reward=chrf", "rest.normalise_reward=true",
                 "rest.threshold=percentile", "rest.thresholds=[0.0]", "rest.guard_samples=2", *FAST]
    summary = compare(tmp_path, overrides, "sft,rest,rest_em,dpo,ppo", capfd)
    assert summary["metrics"] == {"selection": "dev_reward", "proxy": "test_reward", "gold": "test_bleu"}
    by_name = check_methods(summary, ["sft", "rest", "rest_em", "dpo", "ppo"])
    for m in by_name.values():
        assert 0 <= m["gold"] <= 100 and 0 <= m["proxy"] <= 1
    assert by_name["sft"]["by_seed"][0]["train_loss"] > 0  # the start was fine-tuned on the references
    # without a test split there is nothing held out to score: one line, nothing written
    out = tmp_path / "no_test"
    capfd.readouterr()
    assert cli.main(["compare", "--task", str(tmp_path / "task.yaml"), *set_args(overrides),
                     "--set", "translation.test_splits=[]", "--methods", "sft", "--out", str(out)]) == 2
    lines = stderr_lines(capfd.readouterr().err)
    assert len(lines) == 1 and "'translation.test_splits': restlm compare scores methods on a test split" in lines[0]
    assert not out.exists()


def test_sentiment_on_the_real_sentences_with_tiny_classifiers(tiny_model_dir, tmp_path, capfd):
    model = save_tiny(tmp_path / "model")
    overrides = ["task=sentiment", f"model.name={model}", f"sentiment.reward_model={tiny_model_dir}",
                 f"sentiment.gold_model={tiny_model_dir}", "sentiment.prompts=4", "sentiment.dev_prompts=3",
                 "sentiment.heldout_prompts=5", "sentiment.max_new_tokens=5", "train.batch_size=4",
                 "train.eval_batch_size=8", "rest.grow_steps=1", "rest.improve_steps=1", "rest.grow_sizes=[null]",
                 "rest.samples_per_input=2", "rest.sampling=sample", "rest.normalise_reward=true",
                 "rest.original_data=none", "rest.threshold=rising", "rest.thresholds=[0.0]", "rest.guard_samples=2",
                 *FAST]
    summary = compare(tmp_path, overrides, "sft,rest,ppo", capfd)
    assert summary["splits"] == {"train": 4, "dev": 3, "test": 5}
    by_name = check_methods(summary, ["sft", "rest", "ppo"])
    for m in by_name.values():
        assert 0 <= m["gold"] <= 1 and 0 <= m["proxy"] <= 1


def test_bc_matched_copies_rests_optimiser_steps_and_the_controls_summary_pairs_them(tmp_path, capfd):
    """The translation controls of ReST (benchmarks/multi30k_controls.py on a toy corpus): BC on the references
    alone for as many optimiser steps, at the same learning rates and KL anchor, as ReST's Improve steps, from a
    one-epoch start and from a start fine-tuned to its best dev epoch (`train.patience`); then the rows."""
    from restlm.presets.multi30k_controls import publish, summarise

    from restlm.data.parallel import IWSLT14_VALID_LINES

    model, root = save_tiny(tmp_path / "model"), write_corpus(tmp_path / "data")
    (root / "iwslt14_deen").mkdir()  # an out-of-domain set of the real file's length; 3 lines are scored
    for lang, text in (("de", "ein hund"), ("en", "a dog")):
        (root / "iwslt14_deen" / f"valid.{lang}").write_text(f"{text}\n" * IWSLT14_VALID_LINES)
    overrides = ["task=translation", f"data.root={root}", "data.path=toy",
                 "data.dev_split=val", f"model.name={model}", "train.batch_size=2", "train.eval_batch_size=4",
                 "train.epochs=1", "train.learning_rate=0.01", "translation.out_of_domain_limit=3",
                 "translation.test_splits=[test]", "translation.max_new_tokens=6",
                 "translation.system_prompt=null", "rest.grow_steps=2", "rest.improve_steps=1", "rest.grow_sizes=[3]",
                 "rest.samples_per_input=2", "rest.sampling=sample", "rest.reward=chrf", "rest.normalise_reward=true",
                 "rest.threshold=percentile", "rest.thresholds=[0.5]", "rest.guard_samples=2",
                 "rest.improve_kl_coef=0.5", "rest.improve_learning_rate=0.005", *FAST]
    runs = {}
    for start, more in (("one_epoch", []), ("converged", ["train.epochs=4", "train.patience=1"])):
        runs[start] = compare(tmp_path, overrides + more, "sft,rest,bc_matched", capfd, out=tmp_path / "runs" / start)
    converged = check_methods(runs["converged"], ["sft", "rest", "bc_matched"])["sft"]["by_seed"][0]
    by_epoch = converged["dev_reward_by_epoch"]
    assert 1 <= converged["epochs_trained"] == len(by_epoch) <= 4
    assert by_epoch[converged["best_epoch"] - 1] == max(by_epoch) == converged["steps"][0]["dev_reward"]
    # the start holds the best epoch's weights: its final greedy decode scores what that epoch's evaluation did
    assert converged["gold"] == converged["gold_at_chosen_step"]
    for summary in runs.values():
        by_name = check_methods(summary, ["sft", "rest", "bc_matched"])
        rest, matched = by_name["rest"]["by_seed"][0], by_name["bc_matched"]["by_seed"][0]
        assert [s["step"] for s in matched["steps"]] == [s["step"] for s in rest["steps"]] == ["start", "G1I1", "G2I1"]
        assert [s["train_steps"] for s in matched["steps"][1:]] == [s["train_steps"] for s in rest["improve"]]
        assert [s["lr"] for s in rest["improve"]] == [0.005, 0.005]
        assert matched["sampled_tokens"] == 0 and matched["train_steps"] == sum(s["train_steps"] for s in rest["improve"])
    # a rest record from before train_steps and lr were kept (session 16): counted from its stage records alike
    from restlm.config import load_config
    from restlm.methods.bc_matched import _with_steps
    from restlm.errors import RunDirError
    from restlm.runs import RunDir

    folder = RunDir(tmp_path / "runs" / "one_epoch", is_main=True)
    folder.state = json.loads((folder.path / "state.json").read_text())
    config = load_config(tmp_path / "task.yaml", overrides)
    for step in runs["one_epoch"]["methods"][1]["by_seed"][0]["improve"]:
        old = {k: v for k, v in step.items() if k not in ("train_steps", "lr")}
        assert _with_steps(folder, 0, old, config) == step
    folder.state = {"stages": {}}
    with pytest.raises(RunDirError, match="nor a stage record of G1I1 to count them from"):
        _with_steps(folder, 0, {"G": 1, "I": 1, "kept": 4}, config)
    rows = {r["method"]: r for r in summarise(tmp_path / "runs", resamples=50)["methods"]}
    assert list(rows) == ["bc", "rest", "bc_matched", "bc_converged", "rest_from_converged", "bc_matched_from_converged"]
    for name, row in rows.items():
        control = "bc_matched_from_converged" if row["start"] == "converged" else "bc_matched"
        paired = row["test_diff_vs_bc_matched"]
        if name == control:
            assert paired is None
        else:  # a paired difference of the same outputs the rows' means come from
            assert paired["diff"] == pytest.approx(row["test_bleu_mean"] - rows[control]["test_bleu_mean"])
        # IWSLT BLEU of the final outputs is the chosen step's (the same greedy decode, lower-cased)
        chosen = runs[row["start"]]["methods"][["sft", "rest", "bc_matched"].index(row["compare_method"])]["by_seed"][0]
        step = next(s for s in chosen["steps"] if s["step"] == chosen["chosen_step"])
        assert row["iwslt_bleu_mean"] == pytest.approx(step["iwslt_bleu"])
        assert (row["iwslt_diff_vs_bc_matched"] is None) == (name == control)
    # the rows also land in the Table 1 file's `controls` key (the committed file's copy), the rest of it kept,
    # and in its markdown; a rewrite of that file by the Table 1 benchmark keeps them
    from pathlib import Path

    from restlm.presets.multi30k import summary_markdown
    from restlm.errors import DataError
    from restlm.presets.multi30k_controls import kept_controls

    committed = json.loads((Path(__file__).parent.parent / "benchmarks/results/multi30k_smollm2.json").read_text())
    table = tmp_path / "multi30k_smollm2.json"
    table.write_text(json.dumps({**committed, "controls": "stale"}))
    published = publish(tmp_path / "runs", tmp_path / "controls", table=table.with_suffix(""))
    whole = json.loads(table.read_text())
    assert whole["rows"] == committed["rows"] and whole["controls"]["methods"] == published["methods"]
    assert json.loads((tmp_path / "controls.json").read_text())["goal"] == whole["controls"]["goal"]
    markdown = table.with_suffix(".md").read_text()
    assert markdown == summary_markdown(whole) and "| rest_from_converged | converged | 1 |" in markdown
    assert kept_controls(table) == whole["controls"] and kept_controls(tmp_path / "none.json") is None
    table.write_text("{")  # damaged: one error naming it, not a traceback at the end of a long run
    with pytest.raises(DataError, match="multi30k_smollm2.json: not JSON"):
        publish(tmp_path / "runs", tmp_path / "controls", table=table)
    # without rest there is nothing to match: refused before anything is written
    out = tmp_path / "alone"
    capfd.readouterr()
    assert cli.main(["compare", "--task", str(tmp_path / "task.yaml"), *set_args(overrides), "--methods",
                     "sft,bc_matched", "--out", str(out)]) == 2
    lines = stderr_lines(capfd.readouterr().err)
    assert len(lines) == 1 and "--methods: bc_matched reads the records of rest: add it" in lines[0]
    assert not out.exists()
