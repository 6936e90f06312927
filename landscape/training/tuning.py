"""Choices that change how fast a run trains but not what it measures, made by measuring.

The memory format of an image model's tensors (channels-last NHWC or contiguous NCHW) changes
which convolution kernels run: the results agree to float32 rounding, the speed does not, and
which one is faster depends on the machine, the model and the batch (on a 2-core EPYC,
channels-last was 1.5x faster for vgg_light and within noise of NCHW for VGG-A; on GPUs with
tensor cores NHWC usually wins). So instead of assuming one, a record times a few
forward+backward passes in each format at its start and keeps the faster one. The answer is
cached per machine and model (`cache_path()`), so the timing is paid once, and a machine keeps
making the same choice (records made on it agree bit for bit).

Environment:
  LANDSCAPE_MEMORY_FORMAT   auto (default: measure, or read the cache), channels_last or
                            contiguous (use that, measure nothing).
  LANDSCAPE_TUNING_CACHE    off: measure every time, read and write no cache.
  LANDSCAPE_CACHE_DIR       where the cache lives (default: $XDG_CACHE_HOME/bn-landscape, else
                            ~/.cache/bn-landscape).

Other choices that looked like candidates were measured and left out (benchmarks/README.md):
torch's `foreach` Adam is bit-identical to its default on a CPU but not faster; its `fused`
CPU Adam is faster but does not compute the same numbers.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import time
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from landscape.errors import ConfigError

FORMATS: dict[str, torch.memory_format] = {
    "channels_last": torch.channels_last,
    "contiguous": torch.contiguous_format,
}
DEFAULT_FORMAT = "channels_last"  # what every record used before the choice was measured
# A candidate must beat the default by this much to replace it: closer than that is noise on a
# shared machine, and staying with the default keeps records comparable with older ones.
MARGIN = 0.03
ENV_FORMAT = "LANDSCAPE_MEMORY_FORMAT"
ENV_CACHE = "LANDSCAPE_TUNING_CACHE"
ENV_CACHE_DIR = "LANDSCAPE_CACHE_DIR"


def cache_path() -> Path:
    base = os.environ.get(ENV_CACHE_DIR)
    if base:
        return Path(base) / "tuning.json"
    xdg = os.environ.get("XDG_CACHE_HOME")
    root = Path(xdg) if xdg else Path.home() / ".cache"
    return root / "bn-landscape" / "tuning.json"


def machine_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def cache_key(device: torch.device, model: str, options: dict, batch_shape: tuple[int, ...],
              precision: str) -> str:
    """What the answer depends on: the machine, torch, the threads, the model (with its
    options), the batch and the training precision."""
    threads = torch.get_num_threads() if device.type == "cpu" else 0
    return json.dumps([machine_name(device), device.type, torch.__version__, threads, model,
                       sorted(options.items()), list(batch_shape), precision])


def requested_format() -> str | None:
    """The format the environment forces (None: measure)."""
    value = os.environ.get(ENV_FORMAT, "auto").strip().lower()
    if value in ("", "auto"):
        return None
    if value not in FORMATS:
        raise ConfigError(f"{ENV_FORMAT}={value!r} is not a memory format; use auto, "
                          f"channels_last or contiguous")
    return value


def _cache_enabled() -> bool:
    return os.environ.get(ENV_CACHE, "on").strip().lower() not in ("off", "0", "no", "false")


def _read_cache(path: Path) -> dict:
    # A missing, unreadable or malformed cache is the same as an empty one: it only saves time.
    with contextlib.suppress(OSError, ValueError):
        data = json.loads(path.read_text())
        if isinstance(data, dict):
            return data
    return {}


def _write_cache(path: Path, key: str, entry: dict) -> None:
    with contextlib.suppress(OSError):  # a read-only home must not stop a record
        path.parent.mkdir(parents=True, exist_ok=True)
        data = _read_cache(path)
        data[key] = entry
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        tmp.replace(path)  # atomic: concurrent records never read half a file


def time_formats(build: Callable[[], nn.Module], batch_shape: tuple[int, ...],
                 device: torch.device, *, autocast_dtype: torch.dtype | None = None,
                 passes: int = 2, rounds: int = 2) -> dict[str, float]:
    """Seconds of one forward+backward pass (train mode, a random batch of `batch_shape`) in
    each memory format: the fastest of `rounds` interleaved measurements of `passes` passes,
    after one untimed pass. The global random state is left as it was."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(0)
        model = build().to(device).train()
        x = torch.randn(batch_shape, device=device)
        y = torch.randint(0, 10, (batch_shape[0],), device=device)

        def passes_of(fmt: torch.memory_format, n: int) -> float:
            xf = x.contiguous(memory_format=fmt)
            sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
            sync()
            start = time.perf_counter()
            for _ in range(n):
                model.zero_grad(set_to_none=False)
                with torch.autocast(device.type, dtype=autocast_dtype or torch.bfloat16,
                                    enabled=autocast_dtype is not None):
                    loss = nn.functional.cross_entropy(model(xf).float(), y)
                loss.backward()
            sync()
            return (time.perf_counter() - start) / max(n, 1)

        best: dict[str, float] = {}
        for name, fmt in FORMATS.items():  # one untimed pass each: kernels, caches, autotuner
            model.to(memory_format=fmt)
            passes_of(fmt, 1)
        for _ in range(rounds):
            for name, fmt in FORMATS.items():
                model.to(memory_format=fmt)
                seconds = passes_of(fmt, passes)
                best[name] = min(best.get(name, float("inf")), seconds)
    return best


def faster_format(seconds: dict[str, float]) -> str:
    """The default unless another format is faster by more than MARGIN."""
    fastest = min(seconds, key=seconds.get)
    if seconds[fastest] < (1 - MARGIN) * seconds[DEFAULT_FORMAT]:
        return fastest
    return DEFAULT_FORMAT


def choose_memory_format(build: Callable[[], nn.Module], *, model: str, options: dict,
                         batch_shape: tuple[int, ...], device: torch.device,
                         precision: str = "float32",
                         autocast_dtype: torch.dtype | None = None) -> tuple[str, str]:
    """(format name, how it was chosen: "env", "cache" or "measured") for training `model`
    (built by `build`) on batches of `batch_shape` on `device`."""
    forced = requested_format()
    if forced is not None:
        return forced, "env"
    key = cache_key(device, model, options, batch_shape, precision)
    use_cache = _cache_enabled()
    path = cache_path()
    if use_cache:
        entry = _read_cache(path).get(key)
        if isinstance(entry, dict) and entry.get("format") in FORMATS:
            return entry["format"], "cache"
    seconds = time_formats(build, batch_shape, device, autocast_dtype=autocast_dtype)
    choice = faster_format(seconds)
    if use_cache:
        _write_cache(path, key, {"format": choice, "seconds": seconds,
                                 "measured": time.strftime("%Y-%m-%dT%H:%M:%S")})
    return choice, "measured"
