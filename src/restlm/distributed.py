"""Process-level helpers on top of accelerate: split inference work, gather it back in order."""
from __future__ import annotations

from typing import Callable, Sequence

from accelerate.utils import gather_object


def process_state():
    """accelerate's state of this process: num_processes, is_main_process, device, wait_for_everyone.

    ACCELERATE_USE_CPU is passed on as accelerate's own Accelerator() does: a PartialState made
    first without it would pin a multi-process CPU launch to one process for good.
    """
    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env

    return PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU"))


def map_across_processes(accelerator, items: Sequence, fn: Callable[[list], list]) -> list:
    """fn over contiguous shards of items, one per process; the results come back in order."""
    if accelerator.num_processes == 1:
        return fn(list(items))
    with accelerator.split_between_processes(list(items)) as shard:
        results = fn(shard) if len(shard) else []
    return gather_object(results)
