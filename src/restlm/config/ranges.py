"""Range checks of a settings dataclass (a command's flags, a method's config), naming `section.field`.

    check_ranges(cfg, "sft", positive=("learning_rate", "epochs"), unit=("warmup_ratio",))

Every float field must also be finite: NaN and inf mean nothing to any setting of restlm. The
experiment config's own checks are in validation.py.
"""
from __future__ import annotations

import dataclasses
import math

from restlm.errors import ConfigError


def check_ranges(config, section: str, positive: tuple[str, ...] = (), non_negative: tuple[str, ...] = (),
                 unit: tuple[str, ...] = ()) -> None:
    """ConfigError on the first field that is not a number in its range (`unit`: [0, 1])."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{section}.{f.name}", f"must be a finite number, not {value!r}")
    for names, test, wanted in ((positive, lambda v: v > 0, "> 0"), (non_negative, lambda v: v >= 0, ">= 0"),
                                (unit, lambda v: 0 <= v <= 1, "in [0, 1]")):
        for name in names:
            value = getattr(config, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not test(value):
                raise ConfigError(f"{section}.{name}", f"must be a number {wanted}, not {value!r}")
