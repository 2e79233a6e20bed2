"""Command-line flags from a config dataclass: one --flag per field, its help the field's docstring.

    parser = ArgumentParser(prog="restlm ppo")
    add_dataclass_flags(parser, PPOConfig, skip=("lora",))
    cfg = config_from_args(PPOConfig, parser.parse_args(argv), lora=None)  # validated, errors name --flags
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import itertools
import math
import sys
import textwrap
import types
import typing

from restlm.errors import ConfigError


class ArgumentParser(argparse.ArgumentParser):
    """argparse with restlm's error form: one line on stderr (no usage block), exit code 2; and no
    abbreviated flags, so a typo (--learning-rat) is an error, not silently another flag."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        print(f"restlm: error: {self.prog}: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def finite_float(text: str) -> float:
    """argparse type of every float flag: NaN and inf mean nothing to any setting of restlm."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, not {text!r}")
    return value


def add_dataclass_flags(parser: argparse.ArgumentParser, config_class, skip: tuple[str, ...] = ()) -> None:
    """One --flag per field (but `skip`) with the field's default; a bool field is --flag/--no-flag,
    an `X | None` field parses as X. Fields of other types (dicts, lists) must be skipped."""
    hints, docs = typing.get_type_hints(config_class), field_docs(config_class)
    for f in dataclasses.fields(config_class):
        if f.name in skip:
            continue
        flag = f"--{f.name.replace('_', '-')}"
        help_text = f"{docs.get(f.name, '')} (default {f.default})".strip().replace("%", "%%")  # argparse formats help
        kind = _scalar_type(hints[f.name], f.name)
        kind = finite_float if kind is float else kind
        if kind is bool:
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=f.default,
                                help=help_text)
        else:
            parser.add_argument(flag, dest=f.name, type=kind, default=f.default, help=help_text)


def config_from_args(config_class, args: argparse.Namespace, **given):
    """The config from the parsed flags, validated when it has a `validate()`; `given` fills the fields
    that have no flag. A ConfigError on a field is re-raised naming its flag, which the user typed."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(config_class) if f.name not in given}
    config = config_class(**values, **given)
    if hasattr(config, "validate"):
        try:
            config.validate()
        except ConfigError as error:
            field = error.key.rsplit(".", 1)[-1]
            if field not in values:
                raise
            raise ConfigError(f"--{field.replace('_', '-')}", error.message) from None
    return config


def field_docs(config_class) -> dict[str, str]:
    """{field: the string literal under it} over the class and its bases (CleanRL-style field docstrings)."""
    docs: dict[str, str] = {}
    for klass in reversed(config_class.__mro__[:-1]):  # a subclass's docstring wins
        try:
            body = ast.parse(textwrap.dedent(inspect.getsource(klass))).body[0].body
        except (OSError, TypeError, IndexError, AttributeError):
            continue
        for field, doc in itertools.pairwise(body):
            if (isinstance(field, ast.AnnAssign) and isinstance(field.target, ast.Name)
                    and isinstance(doc, ast.Expr) and isinstance(doc.value, ast.Constant)
                    and isinstance(doc.value.value, str)):
                docs[field.target.id] = " ".join(doc.value.value.split())
    return docs


def _scalar_type(hint, name: str):
    options = [t for t in typing.get_args(hint) if t is not type(None)]
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        hint = options[0] if len(options) == 1 else None
    if hint not in (bool, int, float, str):
        raise TypeError(f"field {name!r} ({hint}) has no command-line form; skip it")
    return hint
