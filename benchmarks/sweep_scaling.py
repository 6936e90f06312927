"""Wall time of one 8-run sweep with the local executor and with Ray (docs/scaling.md).

CPU mode: the same tiny sweep (VGG-A and VGG-A with BatchNorm at 1/8 width, two learning
rates, two seeds: 8 runs, real training on the embedded CIFAR-10 subset) recorded
  - locally with torch's default thread count (what `landscape record` uses),
  - locally with one torch thread (the same numerics as one Ray task per core),
  - on a local Ray with 2 CPUs, one run per CPU (`--cpus-per-run 1`: one torch thread each).
The wall time is the whole record() call; Ray's start and stop are timed apart (a cluster
started with `ray start` pays them once, `--ray-address local` on every sweep). The Ray record
is checked to be identical to the one-thread local record. Target: Ray on 2 workers at least
1.6x faster than the local executor.

GPU mode (only where CUDA is available): 8 small runs one after another on the GPU vs packed
onto the one GPU as 8 Ray tasks with `--gpus-per-run 0.125`.

    PYTHONPATH=. python benchmarks/sweep_scaling.py [--steps 300] [--mode cpu|gpu|all]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import ray
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import landscape  # noqa: E402
from landscape.config import RecordConfig  # noqa: E402
from landscape.sweep import RayExecutor, RayOptions  # noqa: E402
from landscape.sweep import record  # noqa: E402


def sweep(steps: int, device: str, width: float) -> RecordConfig:
    return RecordConfig(models=("vgg", "vgg_bn"), lrs=(1e-3, 3e-3), seeds=(0, 1),
                        width=width, batch_size=32, max_steps=steps, device=device,
                        probe=landscape.ProbeConfig(every=10, count=4))


def timed(label: str, fn) -> float:
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    print(f"{label:<58} {seconds:8.1f} s", flush=True)
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
    # The machine's own ceiling, without Ray: two independent processes with one thread each,
    # one per seed (4 runs each), started together.
    pair = timed("no Ray: 2 processes x 4 runs, 1 thread each, at once",
                 lambda: two_processes(steps, folder))
    # Ray's start and stop are timed apart from the sweep: on a cluster (`ray start`) Ray is
    # already running, while `--ray-address local` (the default) pays both on every sweep.
    start = timed("ray: start a local Ray with 2 CPUs", lambda: ray.init(
        num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False))
    sweep_only = timed("ray: the sweep, --cpus-per-run 1 (1 torch thread per run)",
                       lambda: record(config, folder / "ray.h5",
                                      executor=RayExecutor(RayOptions(cpus_per_run=1,
                                                                      threads_per_run=1))))
    stop = timed("ray: shut Ray down", ray.shutdown)
    with_start = start + sweep_only + stop
    print(f"{'ray: all of it (what one local `--executor ray` costs)':<58} {with_start:8.1f} s")
    for name in ("local.h5", "local1.h5", "ray.h5"):  # the runs' own training seconds
        runs = landscape.open_record(folder / name).runs.values()
        print(f"{name:<10} sum of the runs' own seconds: {sum(r.seconds for r in runs):6.1f} s")
    same = identical(folder / "ray.h5", folder / "local1.h5")
    print(f"ray record identical to the 1-thread local record: {same}")
    print(f"the machine's parallel ceiling (2 plain processes vs local, 1 thread): "
          f"{local_1 / pair:.2f}x")
    for name, seconds in (("local (default threads)", local), ("local (1 thread)", local_1)):
        for what, ray_seconds in (("sweep only", sweep_only), ("with start/stop", with_start)):
            ratio = seconds / ray_seconds
            print(f"speed-up of ray ({what}) over {name}: {ratio:.2f}x  "
                  f"{'PASS' if ratio >= 1.6 else 'MISS'} (target >= 1.6x)")


def two_processes(steps: int, folder: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen(
        [sys.executable, "-m", "landscape", "record", "--model", "vgg,vgg_bn", "--lrs",
         "1e-3,3e-3", "--seeds", str(seed), "--width", "0.125", "--batch-size", "32",
         "--max-steps", str(steps), "--device", "cpu", "--probe-every", "10", "--probe-count",
         "4", "-o", str(folder / f"pair{seed}.h5")],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for seed in (0, 1)]
    for proc in procs:
        if proc.wait():
            raise SystemExit("a `landscape record` process failed")


def gpu_mode(steps: int, folder: Path) -> None:
    if not torch.cuda.is_available():
        print("GPU: no CUDA device here; skipped")
        return
    config = sweep(steps, "cuda", 0.5)
    print(f"GPU: 8 runs x {steps} steps, VGG-A 1/2 width, batch 32 on "
          f"{torch.cuda.get_device_name()}")
    one_by_one = timed("local executor, one run after another",
                       lambda: record(config, folder / "gpu-local.h5"))
    ray.init(include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    packed = timed("ray, 8 runs packed on one GPU (--gpus-per-run 0.125)",
                   lambda: record(config, folder / "gpu-ray.h5",
                                  executor=RayExecutor(RayOptions(cpus_per_run=1,
                                                                  threads_per_run=1,
                                                                  gpus_per_run=0.125))))
    ray.shutdown()
    print(f"speed-up of packing (Ray's start and stop not included): "
          f"{one_by_one / packed:.2f}x")


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
