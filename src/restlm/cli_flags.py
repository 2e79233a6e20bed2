"""Command-line flags from a config dataclass: one --flag per field, its help the field's docstring.

    add_dataclass_flags(parser, PPOConfig, skip=("lora",))
    cfg = config_from_args(PPOConfig, parser.parse_args(argv), lora=None)
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import itertools
import textwrap
import types
import typing


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
        if kind is bool:
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=f.default,
                                help=help_text)
        else:
            parser.add_argument(flag, dest=f.name, type=kind, default=f.default, help=help_text)


def config_from_args(config_class, args: argparse.Namespace, **given):
    """The config from the parsed flags; `given` fills the fields that have no flag."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(config_class) if f.name not in given}
    return config_class(**values, **given)


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
