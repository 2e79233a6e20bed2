"""The config sections a run reads: its task's, its method's and `run`.

`restlm config` and the report's config show only these: a `translation:` section printed for an
MRPC run reads as if it applied.
"""
from __future__ import annotations

ALWAYS_READ = ("run",)
NOT_SECTIONS = ("variants",)  # top-level mappings that are settings of their own, shown like task and method


def sections_read(config) -> list[str] | None:
    """What `config` (an ExperimentConfig) has its task and method read: section names, or dotted
    keys where only part of a section is read ("rest.reward"); None where the task does not say
    (a plugin task), meaning every section."""
    from restlm.methods import METHODS
    from restlm.tasks import TASKS

    task = TASKS.get(config.task)
    if task is None or task.sections is None:
        return None
    method = METHODS.get(config.method)
    return list(dict.fromkeys([*task.sections, *(method.sections if method else ()), *ALWAYS_READ]))


def config_shown(values: dict, sections: list[str] | None) -> dict:
    """`values` (the config as a dict) with only the `sections` (whole, or the dotted keys of one);
    scalar keys (task, method, plugins) and the variants stay. Every key stays when `sections` is None."""
    if sections is None:
        return dict(values)
    shown = {}
    for key, value in values.items():
        if not isinstance(value, dict) or key in sections or key in NOT_SECTIONS:
            shown[key] = value
        elif inner := [s.split(".", 1)[1] for s in sections if s.startswith(key + ".")]:
            shown[key] = {k: v for k, v in value.items() if k in inner}
    return shown
