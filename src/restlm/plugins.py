"""The user's own modules, named by the config's `plugins` key: importing one runs its
`@register_task` / `@register_method` decorators, so a task or a method of one's own is one file
beside the config, with no change to restlm.
"""
from __future__ import annotations

import importlib

from restlm.errors import ConfigError


def import_plugins(names: list[str]) -> None:
    """Import each module (found beside the config file or in the working folder, see
    `cli.user_modules_importable`); a module that does not import is one ConfigError naming it."""
    for i, name in enumerate(names):
        key = f"plugins[{i}]"
        if not isinstance(name, str) or not name.strip() or ":" in name:
            raise ConfigError(key, f"must be a module name (my_methods, pkg.module); got {name!r}")
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name and name.startswith(error.name):  # the plugin itself, not one of its imports
                raise ConfigError(key, f"no module {name!r} beside the config file or in the working folder") from None
            raise ConfigError(key, f"{name}: {type(error).__name__}: {error}") from None
        except Exception as error:  # the user's own code: one line, not a traceback
            raise ConfigError(key, f"{name} failed to import: {type(error).__name__}: {error}") from None
