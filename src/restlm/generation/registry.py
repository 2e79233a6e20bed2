"""Engines by name (`generation.engine`); each module of this package registers one."""
from __future__ import annotations

ENGINES: dict[str, type] = {}


def register_engine(name: str):
    def register(cls):
        cls.name = name
        ENGINES[name] = cls
        return cls

    return register
