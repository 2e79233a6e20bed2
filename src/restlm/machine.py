"""The machine a figure was measured on, as one line for results files: host, CPU model, torch threads and the
CPU flags that decide matmul speed here (AMX and AVX512-BF16 run bf16 several times faster than float32)."""
from __future__ import annotations

import platform
import subprocess

import torch


def machine() -> str:
    """`host: CPU model, N torch threads, flags ...` (lscpu; the flags part says `none listed` without it)."""
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        lscpu = ""
    fields = dict(line.split(":", 1) for line in lscpu.splitlines() if ":" in line)
    flags = [f for f in fields.get("Flags", "").split() if f.startswith(("avx512_bf16", "amx", "avx512f", "avx2"))]
    return (f"{platform.node()}: {fields.get('Model name', platform.processor()).strip()}, "
            f"{torch.get_num_threads()} torch threads, flags {' '.join(flags) or 'none listed'}")
