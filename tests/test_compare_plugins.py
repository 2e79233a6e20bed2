"""`restlm compare` extended by the user's own modules through the config's `plugins`: the README's new
method, a task registered by a plugin, and plugins that do not import (one line, exit 2)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from compare_user import write_user_folder
from helpers import stderr_lines

from restlm import cli


@pytest.fixture(scope="module")
def user_folder(tmp_path_factory) -> Path:
    """A user's folder: prompts with an extra column, their reward module, a task config, a tiny Llama."""
    return write_user_folder(tmp_path_factory.mktemp("compare_task"))


def test_the_readmes_new_method_is_one_file_and_runs_beside_the_others(user_folder, tmp_path, monkeypatch, capfd):
    """The README's worked example of a new method, taken from the README itself: a file of the
    user's own beside the task config, registered through the config's `plugins` key."""
    import re

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    code = re.search(r"```python\n(# best_of_k\.py.*?)```", readme, re.S).group(1)
    (user_folder / "best_of_k.py").write_text(code)
    from restlm.methods import METHODS

    try:
        monkeypatch.chdir(user_folder)
        monkeypatch.setattr(sys, "path", list(sys.path))
        out = tmp_path / "out"
        assert cli.main(["compare", "--task", "task.yaml", "--set", "plugins=[best_of_k]", "--out", str(out),
                         "--methods", "sft,best_of_k", "--eval-samples", "2", "--bootstrap", "100"]) == 0, \
            capfd.readouterr().err
        methods = {m["method"]: m for m in json.loads((out / "compare.json").read_text())["methods"]}
        record = methods["best_of_k"]["by_seed"][0]
        assert [s["step"] for s in record["steps"]] == ["start", "trained"] and record["sampled_tokens"] > 0
        assert "best_of_k" in (out / "compare.md").read_text()
    finally:
        METHODS.pop("best_of_k", None)
        sys.modules.pop("best_of_k", None)


PLUGIN_REFUSALS = [
    ("missing", "", "'plugins[0]': no module 'my_plugin' beside the config file or in the working folder"),
    ("raises", "raise RuntimeError('half written')\n", "'plugins[0]': my_plugin failed to import: RuntimeError: half written"),
    ("imports a missing module", "import not_installed_anywhere\n",
     "'plugins[0]': my_plugin: ModuleNotFoundError: No module named 'not_installed_anywhere'"),
]


@pytest.mark.parametrize("case, source, expected", PLUGIN_REFUSALS, ids=[c[0] for c in PLUGIN_REFUSALS])
def test_a_plugin_that_does_not_import_is_one_line(case, source, expected, user_folder, tmp_path, monkeypatch, capfd):
    if source:
        (user_folder / "my_plugin.py").write_text(source)
    monkeypatch.chdir(user_folder)
    monkeypatch.setattr(sys, "path", list(sys.path))
    out = tmp_path / "out"
    capfd.readouterr()
    try:
        code = cli.main(["compare", "--task", "task.yaml", "--set", "plugins=[my_plugin]", "--out", str(out)])
    finally:
        sys.modules.pop("my_plugin", None)
    lines = stderr_lines(capfd.readouterr().err)
    assert code == 2 and len(lines) == 1 and expected in lines[0], lines
    assert not out.exists()


def test_a_plugin_registers_a_task_that_the_config_names(user_folder, monkeypatch):
    from restlm.config import load_config
    from restlm.tasks import TASKS

    (user_folder / "shouting.py").write_text(
        "from restlm.tasks.base import register_task\nfrom restlm.tasks.prompts import PromptsTask\n\n\n"
        "@register_task('shouting')\nclass Shouting(PromptsTask):\n    pass\n")
    monkeypatch.chdir(user_folder)
    monkeypatch.setattr(sys, "path", [*sys.path, str(user_folder)])
    try:
        config = load_config("task.yaml", ["plugins=[shouting]", "task=shouting"])
        assert config.task == "shouting" and TASKS["shouting"].__module__ == "shouting"
    finally:
        TASKS.pop("shouting", None)
        sys.modules.pop("shouting", None)
