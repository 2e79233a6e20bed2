"""Whether bf16 pays on this machine: measured, not assumed (a CPU with AMX or AVX512-BF16 runs bf16
matmuls several times faster than float32; one without emulates them, slower)."""
from __future__ import annotations

import functools
import time

import torch

BF16_GAIN = 1.5  # bf16 is chosen when its matmuls are at least this many times faster


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
    """True on CUDA with bf16 support, or on a CPU whose bf16 matmuls measure BF16_GAIN x float32 (once per process)."""
    if device == "cuda":
        return torch.cuda.is_bf16_supported()
    return matmul_gflops(torch.bfloat16) >= BF16_GAIN * matmul_gflops(torch.float32)


def resolve_dtype(name: str, device: str = "cpu") -> torch.dtype:
    """'float32', 'bfloat16', or 'auto' (bfloat16 when it pays here)."""
    if name == "auto":
        return torch.bfloat16 if bf16_pays(device) else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16}[name]
