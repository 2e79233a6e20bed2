"""Variants of a method (`variants:` in the task config): a name, the method it runs, and the values of that
method's sections it changes. `restlm compare --methods sft,rest,rest_correct` then runs `rest` twice from the
same start, once as configured and once with the variant's values, and reports both."""
from __future__ import annotations

import copy
import dataclasses

from restlm.errors import ConfigError

METHOD_KEY = "method"


def variant_config(config, name: str):
    """The ExperimentConfig variant `name` runs: the config with its values set (refused in one line naming
    `variants.NAME...` when the method is unknown, a value is not in a section the method reads, or invalid)."""
    from restlm.config.loading import from_dict
    from restlm.config.validation import validate
    from restlm.methods import METHODS

    spec, key = dict(config.variants[name]), f"variants.{name}"
    if name in METHODS:
        raise ConfigError(key, f"{name!r} is a method's own name; call the variant something else")
    method = spec.pop(METHOD_KEY, None)
    if method not in METHODS:
        raise ConfigError(f"{key}.{METHOD_KEY}", f"name the method it varies, one of {', '.join(METHODS)}; "
                          f"got {method!r}")
    values = dataclasses.asdict(config)
    values["variants"] = {}
    for dotted in _leaves(spec):
        if not any(dotted == s or dotted.startswith(s + ".") for s in METHODS[method].sections):
            raise ConfigError(f"{key}.{dotted}", f"{method} reads only {', '.join(METHODS[method].sections)}; "
                              "a variant changes those (the task and the start are the same for every method)")
    values = _merged(values, spec)
    try:
        varied = from_dict(type(config), values)
        validate(varied)
    except ConfigError as error:
        raise ConfigError(f"{key}.{error.key}", error.message) from None
    return varied


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


def config_for(config, name: str):
    """The config method run `name` reads: its variant's, or `config` itself for a method."""
    return variant_config(config, name) if name in config.variants else config
