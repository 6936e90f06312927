"""Wall time of one 8-run sweep with the local executor and with Ray (docs/scaling.md).

CPU mode: the same tiny sweep (VGG-A and VGG-A with BatchNorm at 1/8 width, two learning
rates, two seeds: 8 runs, real training on the embedded CIFAR-10 subset) recorded
  - locally with torch's default thread count (what `landscape record` uses),
  - locally with one torch thread (the same numerics as one Ray task per core),
  - on a local Ray with 2 CPUs, one run per CPU (`--cpus-per-run 1`: one torch thread each).
The wall time is the whole record() call, Ray's start-up and shut-down included. The Ray record
is checked to be identical to the one-thread local record. Target: Ray on 2 workers at least
1.6x faster than the local executor.

GPU mode (only where CUDA is available): 8 small runs one after another on the GPU vs packed
onto the one GPU as 8 Ray tasks with `--gpus-per-run 0.125`.

    PYTHONPATH=. python benchmarks/sweep_scaling.py [--steps 300] [--mode cpu|gpu|all]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import landscape  # noqa: E402
from landscape.config import RecordConfig  # noqa: E402
from landscape.ray_sweep import RayOptions, record_on_ray  # noqa: E402
from landscape.sweep import record  # noqa: E402


def sweep(steps: int, device: str, width: float) -> RecordConfig:
    return RecordConfig(models=("vgg", "vgg_bn"), lrs=(1e-3, 3e-3), seeds=(0, 1),
                        width=width, batch_size=32, max_steps=steps, device=device,
                        probe=landscape.ProbeConfig(every=10, count=4))


def timed(label: str, fn) -> float:
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    print(f"{label:<52} {seconds:8.1f} s", flush=True)
    return seconds


def identical(a: Path, b: Path) -> bool:
    from conftest import assert_records_equal

    try:
        assert_records_equal(landscape.open_record(a), landscape.open_record(b))
    except AssertionError:
        return False
    return True


def cpu_mode(steps: int, folder: Path) -> None:
    config = sweep(steps, "cpu", 0.125)
    default_threads = torch.get_num_threads()
    print(f"CPU: 8 runs x {steps} steps, VGG-A 1/8 width, batch 32; this machine has "
          f"{torch.get_num_threads()} torch threads by default")
    local = timed(f"local executor, {default_threads} torch threads (the default)",
                  lambda: record(config, folder / "local.h5"))
    torch.set_num_threads(1)
    local_1 = timed("local executor, 1 torch thread",
                    lambda: record(config, folder / "local1.h5"))
    torch.set_num_threads(default_threads)
    ray_2 = timed("ray, 2 CPUs, --cpus-per-run 1 (start-up included)",
                  lambda: record_on_ray(config, folder / "ray.h5",
                                        options=RayOptions(num_cpus=2, cpus_per_run=1)))
    same = identical(folder / "ray.h5", folder / "local1.h5")
    print(f"ray record identical to the 1-thread local record: {same}")
    for name, seconds in (("local (default threads)", local), ("local (1 thread)", local_1)):
        ratio = seconds / ray_2
        print(f"speed-up of ray over {name}: {ratio:.2f}x  "
              f"{'PASS' if ratio >= 1.6 else 'MISS'} (target >= 1.6x)")


def gpu_mode(steps: int, folder: Path) -> None:
    if not torch.cuda.is_available():
        print("GPU: no CUDA device here; skipped")
        return
    config = sweep(steps, "cuda", 0.5)
    print(f"GPU: 8 runs x {steps} steps, VGG-A 1/2 width, batch 32 on "
          f"{torch.cuda.get_device_name()}")
    one_by_one = timed("local executor, one run after another",
                       lambda: record(config, folder / "gpu-local.h5"))
    packed = timed("ray, 8 runs packed on one GPU (--gpus-per-run 0.125)",
                   lambda: record_on_ray(config, folder / "gpu-ray.h5",
                                         options=RayOptions(cpus_per_run=1,
                                                            gpus_per_run=0.125)))
    print(f"speed-up of packing: {one_by_one / packed:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--mode", choices=["cpu", "gpu", "all"], default="all")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.mode in ("cpu", "all"):
            cpu_mode(args.steps, Path(tmp))
        if args.mode in ("gpu", "all"):
            gpu_mode(args.steps, Path(tmp))


if __name__ == "__main__":
    main()
