"""What a run shows of its config (only the sections its task and method read) and what
`restlm inspect` says of the reward's direction."""
from __future__ import annotations

import json

from restlm import cli
from restlm import run_layout as layout
from restlm.config import load_config, to_dict
from restlm.inspect_run import inspect_run
from restlm.report.document import report_markdown
from restlm.run_sections import config_shown, sections_read


def test_each_task_and_method_reads_its_own_sections():
    assert set(sections_read(load_config(None, []))) == {"data", "model", "train", "rest", "baselines", "run"}
    translation = sections_read(load_config(None, ["task=translation"]))
    assert {"translation", "generation", "baselines.untrained_head"} <= set(translation)
    assert "baselines" not in translation and "ppo" not in translation
    ppo = load_config(None, ["method=ppo"])
    shown = config_shown(to_dict(ppo), sections_read(ppo))
    assert shown["rest"] == {"reward": "nll", "normalise_reward": False}  # PPO reads two keys of rest
    assert "ppo" in shown and "grpo" not in shown and "translation" not in shown
    assert shown["task"] == "classification" and shown["method"] == "ppo"  # scalar keys stay
    assert config_shown({"a": {"b": 1}, "task": "x"}, None) == {"a": {"b": 1}, "task": "x"}


def test_restlm_config_on_translation_shows_translation_not_mrpc_baselines(capsys):
    assert cli.main(["config", "--set", "task=translation"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert "translation" in printed and printed["baselines"] == {"untrained_head": True}
    assert not {"prompts", "sentiment", "arithmetic", "ppo", "dpo"} & set(printed)


def test_the_reports_config_leaves_out_what_the_task_does_not_read():
    config = load_config(None, [])
    results = {"config": to_dict(config), "config_sections": sections_read(config)}
    dump = report_markdown(results, {}).split("## Config")[1]
    assert '"rest": {' in dump and '"translation"' not in dump and '"ppo"' not in dump
    assert "results.json holds every key" in dump
    older = report_markdown({"config": to_dict(config)}, {}).split("## Config")[1]  # no config_sections
    assert '"translation"' in older


def _grown_run(tmp_path, record_extra: dict, rest: dict):
    """A run directory with one Grow step of four rows and one Improve step."""
    prefix = layout.trajectory(0, 4)
    grow = layout.grow_stage(prefix, 1)
    grown = layout.grown_file(grow)
    (tmp_path / grown).parent.mkdir(parents=True, exist_ok=True)
    rewards = [0.01, 0.3, 2.5, 0.002]
    (tmp_path / grown).write_text("".join(json.dumps(
        {"text": f"s{i}", "text_pair": None, "output": i % 2, "gold": 1, "source": "grown", "reward": r}) + "\n"
        for i, r in enumerate(rewards)))
    stages = {grow: {"grown_file": str(grown), **record_extra},
              layout.improve_stage(prefix, 1, 1): {"threshold": 0.3, "kept": 3, "kept_grown": 3, "dev_accuracy": 0.5}}
    (tmp_path / "state.json").write_text(json.dumps({"stages": stages}))
    (tmp_path / "config.json").write_text(json.dumps({"rest": rest}))
    return tmp_path


def test_inspect_says_lower_is_better_for_nll(tmp_path):
    text = inspect_run(_grown_run(tmp_path, {"reward": "nll", "higher_is_better": False}, {"reward": "nll"}), shown=1)
    assert "reward nll: lower is better; an Improve step keeps rows with reward <= its threshold" in text
    best = text.split("best samples (lower reward):")[1].splitlines()[1]
    worst = text.split("worst samples:")[1].splitlines()[1]
    assert best.split()[0] == "0.002" and worst.split()[0] == "2.5"


def test_inspect_reads_the_direction_from_the_grow_record_and_falls_back_to_the_config(tmp_path):
    normalised = inspect_run(_grown_run(tmp_path / "a", {"reward": "nll (normalised)", "higher_is_better": True},
                                        {"reward": "nll", "normalise_reward": True}), shown=1)
    assert "reward nll (normalised): higher is better" in normalised
    assert normalised.split("best samples (higher reward):")[1].splitlines()[1].split()[0] == "2.5"
    older = inspect_run(_grown_run(tmp_path / "b", {}, {"reward": "nll"}), shown=1)  # a run before the record held it
    assert "reward nll: lower is better" in older
    assert "reward chrf: higher is better" in inspect_run(_grown_run(tmp_path / "c", {}, {"reward": "chrf"}), shown=1)
