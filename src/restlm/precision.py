"""Whether bf16 pays on this machine (a CPU with AMX or AVX512-BF16 runs bf16 matmuls several times
faster than float32; one without emulates them, slower), and the matmul timing that measured it. The
`hf` engine's weights (`generation.dtype`) and training's autocast (`train.dtype`) both ask here."""
from __future__ import annotations

import functools
import time

import torch

BF16_GAIN = 1.5  # without feature probes, bf16 is chosen when its matmuls time at least this many times faster


def matmul_gflops(dtype: torch.dtype, n: int = 512, rows: int = 16, seconds: float = 0.2) -> float:
    """GFLOP/s of a (rows x n) @ (n x 3n) matmul, the shape of one decoding step of a small model."""
    a, w = torch.randn(rows, n, dtype=dtype), torch.randn(n, 3 * n, dtype=dtype)
    for _ in range(5):
        a @ w
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        a @ w
        count += 1
    return 2 * rows * n * 3 * n * count / elapsed / 1e9


@functools.cache
def bf16_pays(device: str = "cpu") -> bool:
    """True on CUDA with bf16 support, or on a CPU with native bf16 matmuls (AMX or AVX512-BF16).

    Decided by the CPU's features, not timed each run, so every process of a run and every resume of it
    choose alike (a timing on a busy machine can flip). The rule is measured: on an AVX512-BF16 EPYC
    bf16 matmuls ran 1.8-3.6x float32 and training steps 1.8-2.0x (benchmarks/results/training_speed.md).
    A CPU whose torch cannot say falls back to timing the matmuls (BF16_GAIN).
    """
    if device == "cuda":
        return torch.cuda.is_bf16_supported()
    probes = [getattr(torch.cpu, name, None) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
    if all(callable(probe) for probe in probes):
        return any(probe() for probe in probes)
    return matmul_gflops(torch.bfloat16) >= BF16_GAIN * matmul_gflops(torch.float32)


def training_autocast(name: str, device: torch.device):
    """The context of a training forward pass: bf16 autocast when `train.dtype` (`name`) resolves to bfloat16
    (the weights, gradients and AdamW state stay float32), else a no-op. Returns (context, dtype name)."""
    dtype = resolve_dtype(name, device.type)
    context = torch.autocast(device.type, dtype=torch.bfloat16, enabled=dtype == torch.bfloat16)
    return context, str(dtype).removeprefix("torch.")


def resolve_dtype(name: str, device: str = "cpu") -> torch.dtype:
    """'float32', 'bfloat16', or 'auto' (bfloat16 when it pays here)."""
    if name == "auto":
        return torch.bfloat16 if bf16_pays(device) else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16}[name]
