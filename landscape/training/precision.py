"""The arithmetic training runs in (`--precision`), and the full float32 the measurements keep.

- float32: every operation in float32 (TF32 off on CUDA). What all records were made with.
- tf32: on CUDA, matmuls and convolutions may round their inputs to TF32 (10-bit mantissa,
  float32 range and accumulation), as `RecordConfig.allow_tf32` always allowed. On a CPU torch
  has no TF32 path for these flags: tf32 computes exactly what float32 does.
- bf16: the training forward pass (model and loss) under `torch.autocast` with bfloat16 (8-bit
  mantissa): convolutions and matmuls take bfloat16 inputs; weights, gradients, the optimizer
  and every recorded norm stay float32. Works on CPU and GPU alike (no loss scaling is needed
  with bfloat16's float32 range).

Probes always run in float32 or better, whatever the training precision: the loop runs them
outside autocast with TF32 switched off (`float32_math`), and when training was reduced
(`is_reduced`) they recompute the gradient at w_t in float32 instead of taking the training
step's gradient as the reference, which would otherwise put the training arithmetic's own
rounding into every gradient change they measure (docs/measurements.md, "Precision").
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Iterator

import torch

PRECISIONS = ("float32", "tf32", "bf16")


def autocast_dtype(precision: str) -> torch.dtype | None:
    """The dtype the training forward is autocast to (None: no autocast)."""
    return torch.bfloat16 if precision == "bf16" else None


def is_reduced(precision: str, device: torch.device) -> bool:
    """Whether training gradients on `device` carry more rounding than float32's."""
    return precision == "bf16" or (precision == "tf32" and device.type == "cuda")


@contextlib.contextmanager
def training_autocast(device: torch.device, dtype: torch.dtype | None) -> Iterator[None]:
    """The training forward's autocast (nothing when `dtype` is None)."""
    if dtype is None:
        yield
        return
    with torch.autocast(device.type, dtype=dtype):
        yield


@contextlib.contextmanager
def float32_math() -> Iterator[None]:
    """Full float32 inside, whatever the training allows: TF32 off for CUDA matmuls and cuDNN
    (restored afterwards). Flags only, no device work: free between training steps."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@contextlib.contextmanager
def numerics(device: torch.device, allow_tf32: bool, *, deterministic: bool = False,
             threads: int | None = None) -> Iterator[None]:
    """Full float32 unless TF32 is asked for; restores torch's global flags afterwards.

    `deterministic` (`--reproducible`): torch's deterministic kernels wherever it has them
    (`use_deterministic_algorithms`, warning where an operation has none), cuDNN without its
    timed autotuner (which picks kernels by their speed at the moment: another choice under
    load rounds differently) and cuBLAS with a fixed workspace. `threads`: torch's CPU threads
    (a CPU's float reductions depend on how many threads share them)."""
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
             torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic,
             torch.are_deterministic_algorithms_enabled(),
             torch.is_deterministic_algorithms_warn_only_enabled(), torch.get_num_threads())
    torch.backends.cuda.matmul.allow_tf32 = allow_tf32
    torch.backends.cudnn.allow_tf32 = allow_tf32
    torch.backends.cudnn.benchmark = device.type == "cuda" and not deterministic
    if deterministic:
        # Read by cuBLAS when it first makes a handle; without it, deterministic matmuls on
        # CUDA raise. Set only where the user did not choose one.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.deterministic = True
        torch.use_deterministic_algorithms(True, warn_only=True)
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
         torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic) = saved[:4]
        torch.use_deterministic_algorithms(saved[4], warn_only=saved[5])
        torch.set_num_threads(saved[6])


def reduced_arithmetic(device: torch.device) -> str | None:
    """How a training forward run now rounds more than float32 ("autocast bfloat16", "tf32"),
    or None: inside autocast, or on CUDA with TF32 allowed for matmuls or cuDNN (cuDNN's is
    torch's default)."""
    if torch.is_autocast_enabled(device.type):
        dtype = torch.get_autocast_dtype(device.type)
        return f"autocast {str(dtype).removeprefix('torch.')}"
    if device.type == "cuda" and (torch.backends.cuda.matmul.allow_tf32
                                  or torch.backends.cudnn.allow_tf32):
        return "tf32"
    return None


def amp_unscaled(scaler: Any, optimizer: torch.optim.Optimizer) -> bool:
    """Whether `scaler.unscale_(optimizer)` already ran for this step (torch's own record)."""
    state = scaler._per_optimizer_states[id(optimizer)]
    return state["stage"].name == "UNSCALED"
