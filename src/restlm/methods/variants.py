"""Variants of a method (`variants:` in the task config): a name, the method it runs, and the values of that
method's sections it changes. `restlm compare --methods sft,rest,rest_correct` then runs `rest` twice from the
same start, once as configured and once with the variant's values, and reports both."""
from __future__ import annotations

import copy
import dataclasses
import re

from restlm.errors import ConfigError

METHOD_KEY = "method"
NAME = re.compile(r"[a-z][a-z0-9_]*")
RESERVED = ("start", "init", "untrained", "sft", "final")  # stage names under a seed (run_layout)


def variant_config(config, name: str):
    """The ExperimentConfig variant `name` runs: the config with its values set. Refused in one line naming
    `variants.NAME...` when the name is taken or not a plain identifier, the method is unknown, a value is not
    in a section the method reads or is one it sets itself, or a value is invalid."""
    from restlm.config.loading import from_dict
    from restlm.config.validation import validate
    from restlm.methods import METHODS

    spec, key = dict(config.variants[name]), f"variants.{name}"
    if not NAME.fullmatch(name) or name in RESERVED or name in METHODS:
        raise ConfigError(key, f"{name!r} cannot name a variant: use lower-case letters, digits and _, and "
                          f"neither a method's name nor {', '.join(RESERVED)}")
    method = spec.pop(METHOD_KEY, None)
    if method not in METHODS:
        raise ConfigError(f"{key}.{METHOD_KEY}", f"name the method it varies, one of {', '.join(METHODS)}; "
                          f"got {method!r}")
    cls = METHODS[method]
    for dotted in _leaves(spec):
        if any(_within(dotted, fixed) for fixed in (*cls.fixed, "rest.preset")):
            raise ConfigError(f"{key}.{dotted}", f"{method} sets this itself; a variant cannot change it")
        if not any(_within(dotted, section) for section in cls.sections):
            raise ConfigError(f"{key}.{dotted}", f"{method} reads only {', '.join(cls.sections)}; "
                              "a variant changes those (the task and the start are the same for every method)")
    values = dataclasses.asdict(config)
    values["variants"] = {}
    try:
        varied = from_dict(type(config), _merged(values, spec))
        validate(varied)
    except ConfigError as error:
        raise ConfigError(f"{key}.{error.key}", error.message) from None
    return varied


def config_for(config, name: str):
    """The config method run `name` reads: its variant's, or `config` itself for a method."""
    return variant_config(config, name) if name in config.variants else config


def check_variants(task, config, names, policy) -> None:
    """The task's checks of a `rest` section (`Task.check_rest`) on each variant among `names`, before anything is
    written; a refusal names `variants.NAME.rest...`."""
    for name in names:
        if name in config.variants:
            try:
                task.check_rest(variant_config(config, name).rest, policy)
            except ConfigError as error:
                raise ConfigError(f"variants.{name}.{error.key}", error.message) from None


def _within(dotted: str, section: str) -> bool:
    return dotted == section or dotted.startswith(section + ".")


def _leaves(spec: dict, prefix: str = "") -> list[str]:
    out = []
    for k, v in spec.items():
        out += _leaves(v, f"{prefix}{k}.") if isinstance(v, dict) and v else [f"{prefix}{k}"]
    return out


def _merged(base: dict, changes: dict) -> dict:
    merged = copy.deepcopy(base)
    for k, v in changes.items():
        merged[k] = _merged(merged[k], v) if isinstance(v, dict) and isinstance(merged.get(k), dict) else v
    return merged
