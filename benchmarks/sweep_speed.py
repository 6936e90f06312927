"""record_speed.py's two other modes: a whole preset's record against its physical limit
(`--sweep PRESET`), and several records sharing one device (`--concurrent N`).

The physical limit is the sweep's floating-point work divided by the device's peak rate. The
work is counted with torch.utils.flop_counter.FlopCounterMode on one real training batch of
each model (forward + backward, which is also the unit of a probe point and of an ICS layer)
and one evaluation batch (forward only); it counts matmuls and convolutions, not elementwise
operations, so the limit is a floor no implementation reaches. The peak is `--peak-tflops`,
else the data sheet's dense figure for an H100/H200 at the record's precision, else (CPUs,
other GPUs) the faster of a matmul and a 3x3 convolution measured here in float32 (bf16 for
--precision bf16).
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from landscape.config import RecordConfig, preset
from landscape.models import build_model
from landscape.training.precision import autocast_dtype, is_reduced, training_autocast
from landscape.store import open_record
from landscape.sweep.formats import memory_formats
from landscape.training.precision import numerics
from landscape.sweep import plan_runs, record
from landscape.training.tasks import make_task
from landscape.training.tuning import FORMATS, machine_name

# Dense peak TFLOP/s from NVIDIA's data sheets (SXM; "PCIe" parts are slower). H200 has the
# H100 SXM's compute (more and faster memory). float32 = CUDA cores; tf32/bf16 = tensor cores.
DATASHEET_TFLOPS = {
    "H100 PCIe": {"float32": 51.0, "tf32": 378.0, "bf16": 756.0},
    "H100": {"float32": 67.0, "tf32": 495.0, "bf16": 989.0},
    "H200": {"float32": 67.0, "tf32": 495.0, "bf16": 989.0},
}


def measured_tflops(device: torch.device, precision: str) -> float:
    """The best rate (TFLOP/s) of a large matmul and of a 3x3 convolution (channels-last) on
    `device` in the record's arithmetic. Both: on a CPU torch's matmul library and its
    convolution library (oneDNN) may use different vector units (on this project's EPYC the
    matmul reached 0.21 TFLOP/s, the convolution 0.46)."""
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    n = 2048 if device.type == "cpu" else 8192
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    x = torch.randn(128, 256, 16, 16, device=device, dtype=dtype).contiguous(
        memory_format=torch.channels_last)
    w = torch.randn(256, 256, 3, 3, device=device, dtype=dtype).contiguous(
        memory_format=torch.channels_last)
    candidates = [(lambda: a @ b, 2 * n ** 3),
                  (lambda: torch.conv2d(x, w, padding=1), 2 * 128 * 256 * 16 * 16 * 256 * 9)]
    best = 0.0
    for op, flops in candidates:
        op()  # kernels, caches
        for _ in range(3):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            op()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            best = max(best, flops / (time.perf_counter() - start) / 1e12)
    return best


def peak_tflops(args: argparse.Namespace) -> tuple[float, str]:
    if args.peak_tflops:
        return args.peak_tflops, "--peak-tflops"
    if args.device.type == "cuda":
        name = torch.cuda.get_device_name(args.device)
        for part, table in DATASHEET_TFLOPS.items():  # "H100 PCIe" before "H100"
            if all(word in name for word in part.split()):
                return table[args.precision], f"{part} data sheet, {args.precision}"
    with numerics(args.device, args.tf32):
        return (measured_tflops(args.device, args.precision),
                f"measured: the faster of a {args.precision} matmul and 3x3 convolution")


@dataclass(frozen=True)
class PassFlops:
    train: float  # one training batch, forward + backward
    eval_image: float  # one image, forward only


def pass_flops(config: RecordConfig, model_name: str, task, device: torch.device,
               fmt: torch.memory_format) -> PassFlops:
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        model = build_model(model_name, **config.model.options()).to(device, memory_format=fmt)
        x, y = next(task.using(fmt).stream(0).batches())
        model.train()
        with FlopCounterMode(display=False) as counter:
            with training_autocast(device, autocast_dtype(config.precision)):
                loss = task.loss_fn(model(x), y)
            loss.backward()
        train = counter.get_total_flops()
        model.eval()
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(x)
        return PassFlops(float(train), counter.get_total_flops() / len(x))


def run_flops(config: RecordConfig, flops: PassFlops, steps: int, steps_per_epoch: int,
              n_eval_images: int, device: torch.device) -> float:
    """The work of one run of `steps` steps: training, probes, ICS, evaluations."""
    rec = config.recording
    passes = steps
    if rec.probe.every:
        passes += math.ceil(steps / rec.probe.every) * (
            rec.probe.count + int(is_reduced(config.precision, device)))
    if rec.ics_every:
        passes += math.ceil(steps / rec.ics_every) * len(rec.ics_layers)
    every = config.optim.eval_every or steps_per_epoch
    evaluations = steps // every + int(steps % every != 0)
    return passes * flops.train + evaluations * n_eval_images * flops.eval_image


def sweep_config(args: argparse.Namespace, max_steps: int | None) -> RecordConfig:
    values = RecordConfig().flat_values()
    values.update(preset(args.sweep))
    values.update(device=str(args.device), precision=args.precision, allow_tf32=args.tf32,
                  data_dir=args.data_dir, verify_md5=args.data_dir is None)
    if max_steps is not None:
        values["max_steps"] = max_steps
    if args.probe_every is not None:
        values["probe"] = replace(values["probe"], every=args.probe_every)
    return RecordConfig(**values)


def time_sweep(args: argparse.Namespace) -> None:
    full = sweep_config(args, None)
    planned = full.optim.max_steps
    cut = args.steps if planned is None else min(planned, args.steps)
    config = sweep_config(args, cut)
    device = args.device
    task = make_task(config, device)
    plans = plan_runs(config)
    formats = memory_formats(config, task, device)
    peak, peak_source = peak_tflops(args)
    print(f"device      {device} ({machine_name(device)}), torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    print(f"sweep       preset {args.sweep}: {len(plans)} runs ({', '.join(config.model.models)}"
          f" x {len(config.optim.lrs)} lrs x {len(config.seeds)} seeds), precision "
          f"{config.precision}, formats {formats}")
    print(f"data        {task.identity.describe()}")
    print(f"peak        {peak:,.2f} TFLOP/s ({peak_source})")

    flops = {m: pass_flops(config, m, task, device, FORMATS[formats[m]])
             for m in config.model.models}
    stream = task.stream(0)
    n_eval = task.identity.n_test + task.identity.n_val
    steps = config.optim.total_steps(stream.steps_per_epoch)
    work = sum(run_flops(config, flops[p.model], steps, stream.steps_per_epoch, n_eval, device)
               for p in plans)

    with tempfile.TemporaryDirectory(prefix="sweep-speed-") as tmp:
        out = Path(tmp) / "sweep.h5"
        start = time.perf_counter()
        record(config, out, task=task)
        wall = time.perf_counter() - start
        rec = open_record(out)
        in_runs = sum(info.seconds for info in rec.runs.values())
        done = sum(info.steps_done for info in rec.runs.values())

    images = done * config.optim.batch_size
    limit = work / (peak * 1e12)
    print(f"\nran         {done:,} steps ({steps:,} per run), {images:,} training images")
    print(f"measured    {wall:,.1f} s for the whole record() call, {in_runs:,.1f} s inside "
          f"the runs ({images / in_runs:,.0f} img/s)")
    print(f"work        {work / 1e12:,.2f} TFLOP (matmuls and convolutions)")
    print(f"limit       {limit:,.2f} s at peak: measured / limit = {in_runs / limit:,.1f}x")

    # The full preset: its own steps on --train-images, evaluated on --test-images.
    per_epoch = args.train_images // full.optim.batch_size
    full_steps = full.optim.total_steps(per_epoch)
    full_work = sum(run_flops(full, flops[p.model], full_steps, per_epoch, args.test_images,
                              device) for p in plan_runs(full))
    projected = in_runs * full_work / work
    print(f"\nfull preset {len(plan_runs(full))} runs x {full_steps:,} steps on "
          f"{args.train_images:,} images ({args.test_images:,} held out): "
          f"{full_work / 1e15:,.2f} PFLOP")
    print(f"            projected {projected / 60:,.1f} min at the measured rate; physical "
          f"limit {full_work / (peak * 1e12) / 60:,.2f} min")


def record_command(args: argparse.Namespace, out: Path) -> list[str]:
    command = [sys.executable, "-m", "landscape", "record", "--model", args.models[0],
               "--lrs", f"{args.lr:g}", "--optimizer", "adam", "--batch-size",
               str(args.batch_size), "--max-steps", str(args.steps), "--device",
               str(args.device), "--no-taps", "--precision", args.precision, "--width",
               f"{args.width:g}", "-o", str(out)]
    if args.data_dir:
        command += ["--data-dir", args.data_dir, "--no-verify"]
    return command


def launch(args: argparse.Namespace, outs: list[Path]) -> float:
    """Start one `landscape record` per path at once; wall seconds until the last ends."""
    env = os.environ.copy()
    if args.threads_per_run:  # torch's intra-op threads follow OMP_NUM_THREADS
        env["OMP_NUM_THREADS"] = str(args.threads_per_run)
    start = time.perf_counter()
    procs = [subprocess.Popen(record_command(args, out), stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, env=env)
             for out in outs]
    for proc in procs:
        _, err = proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"landscape record failed: {err.strip().splitlines()[-1:]}")
    return time.perf_counter() - start


def time_concurrent(args: argparse.Namespace) -> None:
    """N records at once against one alone, same options (--model's first model, Adam, no
    taps, no probe). Each record's own `seconds` (its training and evaluations, without the
    interpreter's start) gives its throughput; summed, the device's."""
    n = args.concurrent
    images = args.steps * args.batch_size
    print(f"device      {args.device} ({machine_name(args.device)}), torch {torch.__version__}")
    print(f"runs        {args.models[0]}, width {args.width:g}, Adam, batch {args.batch_size}, "
          f"{args.steps} steps each, precision {args.precision}, "
          f"{args.threads_per_run or 'default'} CPU threads per run; the same record alone, "
          f"then {n} at once")
    with tempfile.TemporaryDirectory(prefix="concurrent-") as tmp:
        tmp = Path(tmp)
        launch(args, [tmp / "warm.h5"])  # the memory format is measured and cached here
        wall_1 = launch(args, [tmp / "solo.h5"])
        solo = next(iter(open_record(tmp / "solo.h5").runs.values())).seconds
        outs = [tmp / f"run{i}.h5" for i in range(n)]
        wall_n = launch(args, outs)
        seconds = [next(iter(open_record(o).runs.values())).seconds for o in outs]
    alone = images / solo
    together = sum(images / s for s in seconds)
    print(f"\nalone       {alone:10,.0f} img/s inside the run ({wall_1:.1f} s process wall)")
    print(f"{n} at once   {together:10,.0f} img/s summed over the runs ({wall_n:.1f} s wall "
          f"for all, {n * images / wall_n:,.0f} img/s counting start-up)")
    print(f"            {together / alone:.2f}x the throughput of one run "
          f"({n * wall_1 / wall_n:.2f}x by process wall)")
    print("On a GPU, the user-facing way to share it between the runs of a sweep is the Ray "
          "executor's fractional GPUs (--gpus-per-run); this measures what sharing gives.")
