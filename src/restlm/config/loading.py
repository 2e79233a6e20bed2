"""Building the experiment config: a JSON/YAML file, `--set key=value` overrides and presets.

Every unknown key and every wrong type is a `ConfigError` naming the dotted key, so that a
typo in a config file stops the run before any work is done.
"""
from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from pathlib import Path

import yaml

from restlm.config.sections import ExperimentConfig
from restlm.config.validation import validate
from restlm.errors import ConfigError, DataError


def _check_type(key: str, value, annotation):
    """Return `value` converted to `annotation`, or raise ConfigError naming `key`."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in (o for o in options if o is not type(None)):
            try:
                return _check_type(key, value, option)
            except ConfigError as error:
                errors.append(error)
        raise errors[0]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(key, f"expected a mapping, got {type(value).__name__} {value!r}")
        _, inner = typing.get_args(annotation)
        return {str(k): _check_type(f"{key}.{k}", v, inner) for k, v in value.items()}
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(key, f"expected a list, got {type(value).__name__} {value!r}")
        (inner,) = typing.get_args(annotation)
        return [_check_type(f"{key}[{i}]", v, inner) for i, v in enumerate(value)]
    if annotation is float and not isinstance(value, bool) and isinstance(value, (int, float, str)):
        try:  # YAML 1.1 reads 5e-5 (no dot) as a string
            number = float(value)
        except ValueError:
            number = None
        if number is not None:
            if not math.isfinite(number):  # no setting of restlm means anything at NaN or inf
                raise ConfigError(key, f"must be a finite number, not {value!r}")
            return number
    if annotation is type(None):
        if value is None:
            return None
        raise ConfigError(key, f"expected null, got {value!r}")
    if not isinstance(value, annotation) or (annotation is int and isinstance(value, bool)):
        raise ConfigError(key, f"expected {annotation.__name__}, got {type(value).__name__} {value!r}")
    return value


def from_dict(cls, values: dict, prefix: str = ""):
    """Build dataclass `cls` from a nested dict; unknown keys and wrong types raise ConfigError."""
    if not isinstance(values, dict):
        raise ConfigError(prefix.rstrip(".") or "<root>", f"expected a mapping, got {values!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in values:
        if key not in names:
            raise ConfigError(prefix + key, f"unknown key (known: {', '.join(sorted(names))})")
    kwargs = {}
    for name, value in values.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            kwargs[name] = from_dict(hint, value, prefix + name + ".")
        else:
            kwargs[name] = _check_type(prefix + name, value, hint)
    return cls(**kwargs)


def to_dict(config) -> dict:
    return dataclasses.asdict(config)


def _parse_override(text: str) -> tuple[list[str], object]:
    if "=" not in text:
        raise ConfigError(text, "an override must look like key.sub=value")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def apply_overrides(values: dict, overrides: list[str]) -> dict:
    """Set dotted `key=value` overrides (values parsed as YAML) into a nested dict, in place."""
    for text in overrides:
        path, value = _parse_override(text)
        node = values
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(".".join(path), f"'{part}' is not a section")
        node[path[-1]] = value
    return values


def read_config_file(path: str | Path) -> dict:
    """Read a JSON or YAML config file into a dict; a malformed file raises ConfigError."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise DataError(path, f"cannot read config file: {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise DataError(path, f"not UTF-8 text (byte {error.start}); save the config file as UTF-8") from None
    try:
        values = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        line = getattr(error, "lineno", None) or getattr(getattr(error, "problem_mark", None), "line", -1) + 1
        raise DataError(path, f"malformed config file: {str(error).splitlines()[0]}", line) from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise DataError(path, f"a config file must be a mapping of sections (task:, data:, rest: ...), "
                        f"not {type(values).__name__} {str(values)[:40]!r}")
    return values


RECORDED_BEFORE = {"generation": {"engine": "hf"}, "train": {"dtype": "float32"}, "ppo": {"dtype": "float32"},
                   "grpo": {"dtype": "float32"}}
"""the old defaults of keys added or changed since runs were recorded: a run recorded before a key existed ran
this way (every generative sample through hf generate; training and the online methods' token passes in float32,
the online ones until session 21), and a run recorded at one of these values goes on with it (keep_recorded_defaults)"""


def keep_recorded_defaults(config: ExperimentConfig, recorded: dict) -> list[str]:
    """A run resumed after a default changed goes on as it started: each RECORDED_BEFORE key that `recorded` (a
    config.json's experiment) holds, or lacks, at the old value while `config` holds today's default is set
    back to the old value on `config` (a value the user chose otherwise is theirs). The keys set, as KEY=VALUE."""
    recorded, today, kept = as_recorded(recorded), ExperimentConfig(), []
    if not isinstance(recorded, dict):
        return kept
    for section, keys in RECORDED_BEFORE.items():
        held = recorded.get(section)
        for key, old in keys.items():
            now, default = getattr(getattr(config, section), key), getattr(getattr(today, section), key)
            if isinstance(held, dict) and held.get(key) == old and now == default != old:
                setattr(getattr(config, section), key, old)
                kept.append(f"{section}.{key}={old}")
    return kept


def recorded_config(values: dict) -> ExperimentConfig:
    """The config a run directory recorded (config.json); a key it lacks is filled as that run ran
    (RECORDED_BEFORE), other missing keys at their defaults, so a resume samples and trains as it did."""
    return from_dict(ExperimentConfig, as_recorded(values))


def as_recorded(values: dict) -> dict:
    """Recorded config values with the keys of RECORDED_BEFORE they lack filled as that run ran."""
    if not isinstance(values, dict):
        return values
    def filled(section: str, before: dict):
        held = values.get(section)
        # a section that is not a mapping is left for loading to refuse by name
        return {**before, **(held or {})} if held is None or isinstance(held, dict) else held
    return {**values, **{section: filled(section, before) for section, before in RECORDED_BEFORE.items()}}


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> ExperimentConfig:
    """The experiment config from an optional file plus `key=value` overrides, validated."""
    values = read_config_file(path) if path else {}
    apply_overrides(values, overrides or [])
    if isinstance(values, dict) and isinstance(values.get("rest"), dict) and values["rest"].get("preset") is not None:
        # the preset replaces the file's rest keys (a config written for ReST must not half-apply
        # to ReST-EM); --set still wins over the preset
        values = apply_overrides(apply_preset(values), overrides or [])
    config = from_dict(ExperimentConfig, values)
    validate(config)
    return config


# A preset sets rest.* keys over the config file's; --set overrides win over the preset.
PRESETS = {
    "rest_em": {  # Singh et al. 2023: binary reward, restart from the start each Grow step, cap per input
        "binary_reward_threshold": 0.5, "max_kept_per_input": 10, "restart_from": "start",
        "improve_steps": 1, "threshold": "rising", "thresholds": [0.5], "normalise_reward": True,
        "original_data": "none",
    },
}


def apply_preset(values: dict) -> dict:
    """`values` with the rest.preset's keys set over the rest section's own; unknown presets raise."""
    rest = values["rest"]
    preset = rest["preset"]
    if preset not in PRESETS:
        raise ConfigError("rest.preset", f"must be one of {', '.join(PRESETS)}; got {preset!r}")
    return {**values, "rest": {**rest, **PRESETS[preset]}}
