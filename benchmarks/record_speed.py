"""How fast `landscape record` trains, compared with the course's plain training loop.

Five measurements, in one process, on the same images, model, optimizer and batch size:

  plain           the course starter's loop: torchvision's CIFAR10 dataset read from a folder in
                  the official format, per-image ToTensor + Normalize, a DataLoader (shuffle,
                  num_workers=0, drop_last), NCHW tensors, Adam, `loss.item()` every step.
  record          `landscape.record` with no taps and no probe: on-device batches, channels-last,
                  the per-step measurements (loss, gradient/update norms) written to HDF5.
  record + taps   the same, tapping the default parameter (classifier.fc3.weight) every step.
  record + probe  the same (no taps), with the paper's probe at every step (K step lengths).
  fwd+bwd         a tight loop of zero_grad + forward + backward on one batch, under record's
                  numerics (channels-last, cuDNN autotuning): the unit the probe's cost is
                  compared with, since a probe costs K forward+backward passes at the least.

Why: the issue asks that recording be faster than the course loop (record/plain >= 1.3), that
taps be nearly free (< 5% over record), and that a probe cost little more than its K passes
(overhead per probed step / (K x one fwd+bwd) <= 1.15).

What is timed: training steps only. `plain` times `--steps` steps after `--warmup` steps. Each
`record` variant first runs a separate `--warmup`-step record (warming caches and cuDNN's
autotuner), then a `--steps`-step record whose steps are timed through record's progress hook:
from entering the run's loop to its last progress report, which follows the last step's host
sync and precedes the final evaluation and file write. The table also shows the images/s that
record itself reports (RunOutcome.images_per_second: all steps plus the final evaluation) and the
wall time of the whole timed call (setup, file creation, evaluation and writing included).

Numerics: record trains in full float32 unless TF32 is asked for; the plain loop is given the
same TF32 setting (`--tf32`, off by default) so that both compute the same thing. Torch's own
default would run the plain loop's convolutions in TF32 on recent GPUs. cuDNN autotuning is left
at torch's default (off) in the plain loop, as course code leaves it; record turns it on.

Memory format: record trains in the format landscape.training.tuning measured to be faster on this
machine (cached); the header says which, and `fwd+bwd` uses the same one.

Two more modes (benchmarks/README.md):
  --sweep PRESET    times a whole preset's record (steps per run cut at --steps), counts its
                    FLOPs with torch.utils.flop_counter and prints the physical limit (FLOPs /
                    peak FLOP/s) beside the measured time, for the steps run and for the whole
                    preset.
  --concurrent N    launches N `landscape record` processes at once on the device, against one
                    alone: the throughput of several runs sharing a GPU (the user-facing way to
                    do that is the Ray executor's fractional GPUs, --gpus-per-run).

Usage (from the repository root):
    .venv/bin/python benchmarks/record_speed.py                    # CUDA when available
    .venv/bin/python benchmarks/record_speed.py --device cpu --steps 3 --width 0.25
    .venv/bin/python benchmarks/record_speed.py --model vgg,vgg_light
    .venv/bin/python benchmarks/record_speed.py --sweep course --steps 50
    .venv/bin/python benchmarks/record_speed.py --concurrent 4 --model vgg_light --steps 200
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
import torchvision
from torch import nn
from torch.utils.data import DataLoader
from torchvision import transforms
from torchvision.datasets import CIFAR10

from landscape.config import DEFAULT_TAP, PRECISIONS, ProbeConfig, RecordConfig
from landscape.data import BatchOptions, BatchStream, DeviceImages, ImageData, load_embedded
from landscape.data import write_batches
from landscape.data.images import pixels_sha256
from landscape.models import build_model
from landscape.training.precision import is_reduced
from landscape.store import RunStatus
from landscape.sweep.formats import memory_formats
from landscape.training.precision import numerics
from landscape.sweep import record, resolve_device
from landscape.training.tasks import make_task
from landscape.training.tuning import FORMATS

# record / plain images per second, at least: on a GPU record's on-device batches should beat
# the course loop's per-image pipeline clearly; on a CPU both spend >90% in the same
# convolutions, and record must simply never be slower.
TARGET_SPEEDUP = {"cuda": 1.3, "cpu": 1.0}
TARGET_TAP_COST = 5.0  # (record + taps) over record, percent, below
TARGET_PROBE_RATIO = 1.15  # probe overhead per probed step / (K x fwd+bwd), at most


# ---- setup ---------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="vgg",
                   help="model name(s), comma-separated, each measured in turn (default: vgg)")
    p.add_argument("--steps", type=int, default=20, help="steps timed per measurement")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps before each measurement")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--width", type=float, default=1.0, help="model channel-width multiplier")
    p.add_argument("--repeats", type=int, default=1,
                   help="measurements per variant, interleaved; the median is reported")
    p.add_argument("--tf32", action="store_true",
                   help="allow TF32 on CUDA in every variant (default: full float32)")
    p.add_argument("--precision", choices=PRECISIONS, default="float32",
                   help="record's --precision (the plain loop stays float32, or TF32 with "
                        "--tf32)")
    p.add_argument("--sweep", metavar="PRESET", default=None,
                   help="time a whole preset's record, steps per run cut at --steps")
    p.add_argument("--probe-every", type=int, default=None,
                   help="--sweep: probe every N steps instead of the preset's N")
    p.add_argument("--data-dir", default=None,
                   help="--sweep: CIFAR-10 folder (default: the embedded subset)")
    p.add_argument("--train-images", type=int, default=50_000,
                   help="--sweep: training images of the full preset, for its projection "
                        "(default: CIFAR-10's 50,000)")
    p.add_argument("--test-images", type=int, default=10_000,
                   help="--sweep: held-out images of the full preset (default: 10,000)")
    p.add_argument("--peak-tflops", type=float, default=None,
                   help="the device's peak TFLOP/s for the physical limit (default: "
                        "H100/H200 data-sheet values, else a measured matmul)")
    p.add_argument("--concurrent", type=int, default=0, metavar="N",
                   help="launch N `landscape record` processes at once (and one alone)")
    p.add_argument("--threads-per-run", type=int, default=0, metavar="T",
                   help="--concurrent: OMP_NUM_THREADS of each process (default: torch's, "
                        "one per core: N processes then oversubscribe a CPU)")
    args = p.parse_args()
    if args.steps < 1 or args.warmup < 0 or args.repeats < 1 or args.batch_size < 1:
        p.error("--steps, --repeats and --batch-size must be >= 1, --warmup >= 0")
    if args.concurrent < 0:
        p.error("--concurrent must be >= 0")
    if args.precision == "tf32":
        args.tf32 = True
    args.device = resolve_device(args.device)
    args.models = [m for m in args.model.split(",") if m]
    return args


def model_options(width: float) -> dict:
    return {} if width == 1.0 else {"width": width}


def benchmark_data(n_train: int) -> ImageData:
    """The embedded CIFAR-10 images, the training ones tiled to at least `n_train` images, so
    that no measurement crosses an epoch end (record evaluates at every epoch end)."""
    data = load_embedded()
    reps = -(-n_train // len(data.train_y))
    x, y = np.concatenate([data.train_x] * reps), np.concatenate([data.train_y] * reps)
    identity = dataclasses.replace(
        data.identity, n_train=len(y), train_sha256=pixels_sha256(x, y),
        train_split=f"{data.identity.train_split}, repeated {reps} times")
    return ImageData(x, y, data.test_x, data.test_y, identity)


class FolderCIFAR10(CIFAR10):
    """torchvision's CIFAR10 over a folder written by `write_batches`.

    torchvision checks the official files' MD5 sums (and the meta file's); the folder holds other
    images in the same format, so both checks are skipped. Nothing else changes: the baseline
    reads the same files with torchvision's own per-image code path (PIL image, transforms).
    """

    meta = {**CIFAR10.meta, "md5": None}  # check_integrity(path, None) only checks existence

    def _check_integrity(self) -> bool:
        return True


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclasses.dataclass(frozen=True)
class Timing:
    seconds_per_step: float
    reported_ips: float | None = None  # RunOutcome.images_per_second
    wall: float | None = None  # the whole record() call


# ---- the measurements ----------------------------------------------------------------------


@contextlib.contextmanager
def plain_numerics(tf32: bool) -> Iterator[None]:
    """Torch's defaults, except TF32, which follows --tf32 as it does in record."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = tf32
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def forever(loader: DataLoader) -> Iterator:
    while True:
        yield from loader


def seconds_per_call(fn: Callable[[], object], args: argparse.Namespace,
                     device: torch.device) -> float:
    """Mean seconds of `fn` over `args.steps` calls after `args.warmup` untimed ones."""
    for _ in range(args.warmup):
        fn()
    sync(device)
    start = time.perf_counter()
    for _ in range(args.steps):
        fn()
    sync(device)
    return (time.perf_counter() - start) / args.steps


def time_plain(args: argparse.Namespace, cifar_root: Path) -> Timing:
    """The course starter's loop."""
    device = args.device
    transform = transforms.Compose([
        transforms.ToTensor(),
        transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    ])
    dataset = FolderCIFAR10(root=str(cifar_root), train=True, transform=transform)
    loader = DataLoader(dataset, batch_size=args.batch_size, shuffle=True, num_workers=0,
                        drop_last=True)
    with plain_numerics(args.tf32):
        torch.manual_seed(0)
        model = build_model(args.model, **model_options(args.width)).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
        criterion = nn.CrossEntropyLoss()
        batches = forever(loader)
        model.train()

        def step() -> float:
            x, y = next(batches)
            x, y = x.to(device), y.to(device)
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
            return loss.item()

        return Timing(seconds_per_call(step, args, device))


class StepClock:
    """record()'s progress factory that times the steps of the run it reports on.

    The clock starts when the run's training loop is entered and stops at the loop's last
    progress report, which comes after the last step's host sync and before the run's final
    evaluation and file write.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.steps = 0
        self.start = self.stop = 0.0

    def __call__(self, plan, n_runs: int, total: int) -> "StepClock":
        return self

    def __enter__(self) -> "StepClock":
        sync(self.device)
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        return None

    def advance(self, steps: int, *, loss: float, images_per_second: float) -> None:
        sync(self.device)
        self.stop = time.perf_counter()
        self.steps += steps

    def seconds_per_step(self) -> float:
        return (self.stop - self.start) / self.steps


def record_config(args: argparse.Namespace, *, taps: tuple[str, ...], probe: ProbeConfig,
                  steps: int) -> RecordConfig:
    return RecordConfig(
        models=(args.model,), lrs=(args.lr,), optimizer="adam", batch_size=args.batch_size,
        epochs=1, max_steps=steps, device=str(args.device), allow_tf32=args.tf32,
        width=args.width, taps=taps, probe=probe, precision=args.precision,
    )


def call_record(config: RecordConfig, out: Path, data: ImageData, progress=None):
    """`landscape.record` on `data` (uploaded to the device by make_task, outside the timing)."""
    task = make_task(config, torch.device(config.device), data)
    return record(config, out, overwrite=True, task=task, progress=progress)


def time_record(args: argparse.Namespace, data: ImageData, workdir: Path, *,
                taps: tuple[str, ...] = (), probe: ProbeConfig = ProbeConfig()) -> Timing:
    """A warm-up record, then a timed one (see StepClock for what is timed)."""
    if args.warmup:
        call_record(record_config(args, taps=taps, probe=probe, steps=args.warmup),
                    workdir / "warmup.h5", data)
    clock = StepClock(args.device)
    start = time.perf_counter()
    results = call_record(record_config(args, taps=taps, probe=probe, steps=args.steps),
                          workdir / "timed.h5", data, progress=clock)
    wall = time.perf_counter() - start
    outcome = results[0].outcome
    if outcome.status != RunStatus.COMPLETE or clock.steps != args.steps:
        raise RuntimeError(f"record run ended {outcome.status} after {clock.steps} steps")
    return Timing(clock.seconds_per_step(), outcome.images_per_second, wall)


def time_forward_backward(args: argparse.Namespace, data: ImageData) -> Timing:
    """zero_grad + forward + backward on one batch, as the probe runs them (train mode, record's
    numerics and memory format), without an optimizer step."""
    device = args.device
    fmt = FORMATS[args.memory_format]
    with numerics(device, args.tf32):
        torch.manual_seed(0)
        model = build_model(args.model, **model_options(args.width))
        model = model.to(device=device, memory_format=fmt).train()
        b = args.batch_size
        stream = BatchStream(DeviceImages(data.train_x[:b], data.train_y[:b], device),
                             BatchOptions(batch_size=b), seed=0, memory_format=fmt)
        x, y = next(stream.epoch())

        def forward_backward() -> None:
            # The probe's passes: float32, whatever the training precision.
            model.zero_grad(set_to_none=False)
            nn.functional.cross_entropy(model(x), y).backward()

        return Timing(seconds_per_call(forward_backward, args, device))


# ---- running and reporting -----------------------------------------------------------------


def variants(args, data, cifar_root, workdir) -> dict[str, Callable[[], Timing]]:
    return {
        "plain": lambda: time_plain(args, cifar_root),
        "record": lambda: time_record(args, data, workdir),
        "record + taps": lambda: time_record(args, data, workdir, taps=(DEFAULT_TAP,)),
        "record + probe": lambda: time_record(args, data, workdir, probe=ProbeConfig(every=1)),
        "fwd+bwd": lambda: time_forward_backward(args, data),
    }


def run_all(todo: dict[str, Callable[[], Timing]], repeats: int,
            batch_size: int) -> dict[str, list[Timing]]:
    """Every variant `repeats` times, interleaved, each round starting one variant later, so
    that slow drifts and bursts of load fall on all variants alike."""
    names = list(todo)
    timings: dict[str, list[Timing]] = {n: [] for n in names}
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            t = todo[name]()
            timings[name].append(t)
            print(f"  [{r + 1}/{repeats}] {name:<15} {batch_size / t.seconds_per_step:9.1f} img/s",
                  flush=True)
    return timings


def median(values) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def mark(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def cpu_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def print_header(args: argparse.Namespace, data: ImageData) -> None:
    device = args.device
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    n_params = sum(p.numel() for p in
                   build_model(args.model, **model_options(args.width)).parameters())
    print(f"device      {device} ({name})")
    print(f"torch       {torch.__version__}, torchvision {torchvision.__version__}, "
          f"python {platform.python_version()}")
    print(f"threads     torch {torch.get_num_threads()} (interop "
          f"{torch.get_num_interop_threads()}), CPUs {os.cpu_count()}")
    print(f"model       {args.model}, width {args.width:g}, {n_params:,} parameters; record "
          f"trains it {args.memory_format} ({args.format_source})")
    print(f"training    Adam lr {args.lr:g}, batch {args.batch_size}, "
          f"{'TF32 allowed' if args.tf32 else 'float32 (no TF32)'}, record precision "
          f"{args.precision}")
    print(f"timing      {args.steps} steps after {args.warmup} warm-up steps, "
          f"{args.repeats} repeat(s), median reported")
    print(f"data        {data.identity.n_train:,} training images "
          f"({data.identity.train_split})")
    print()


def print_results(timings: dict[str, list[Timing]], args: argparse.Namespace) -> None:
    b = args.batch_size
    step = {n: median(t.seconds_per_step for t in ts) for n, ts in timings.items()}
    print(f"\n{'variant':<16}{'img/s':>10}{'ms/step':>10}{'spread':>8}"
          f"{'reported img/s':>16}{'call s':>9}")
    for name, ts in timings.items():
        per_step = [t.seconds_per_step for t in ts]
        spread = (max(per_step) - min(per_step)) / step[name]
        reported = median(t.reported_ips for t in ts)
        wall = median(t.wall for t in ts)
        print(f"{name:<16}{b / step[name]:>10.1f}{1e3 * step[name]:>10.2f}"
              f"{f'{100 * spread:.0f}%' if len(ts) > 1 else '':>8}"
              f"{'' if reported is None else f'{reported:.1f}':>16}"
              f"{'' if wall is None else f'{wall:.2f}':>9}")
    print("img/s, ms/step: medians over the timed steps only; spread: (slowest - fastest) / "
          "median over the repeats;\nreported img/s: RunOutcome.images_per_second (includes the "
          "final evaluation); call s: the whole record() call\n")

    speedup = step["plain"] / step["record"]
    tap_cost = 100 * (step["record + taps"] / step["record"] - 1)
    # A probe costs K passes, and one more for its float32 reference under reduced precision.
    k = ProbeConfig().count + int(is_reduced(args.precision, args.device))
    overhead = step["record + probe"] - step["record"]
    probe_ratio = overhead / (k * step["fwd+bwd"])
    target = TARGET_SPEEDUP[args.device.type]
    print(f"record / plain              {speedup:8.2f}x   target >= {target}   "
          f"{mark(speedup >= target)}")
    print(f"taps cost over record       {tap_cost:+8.1f}%   target <  {TARGET_TAP_COST:g}%    "
          f"{mark(tap_cost < TARGET_TAP_COST)}")
    print(f"probe overhead / (K fwd+bwd) {probe_ratio:7.2f}    target <= {TARGET_PROBE_RATIO}  "
          f"{mark(probe_ratio <= TARGET_PROBE_RATIO)}")
    print(f"  (K = {k}; probe overhead {1e3 * overhead:.2f} ms per probed step, "
          f"one fwd+bwd {1e3 * step['fwd+bwd']:.2f} ms)")


def chosen_format(args: argparse.Namespace, data: ImageData) -> None:
    """The memory format record will train `args.model` in (measured now, or cached)."""
    config = record_config(args, taps=(), probe=ProbeConfig(), steps=1)
    task = make_task(config, args.device, data)
    args.memory_format = memory_formats(config, task, args.device)[args.model]
    key = "env" if os.environ.get("LANDSCAPE_MEMORY_FORMAT", "auto") != "auto" else \
        "measured or cached"
    args.format_source = key


def compare_with_plain(args: argparse.Namespace) -> None:
    # One epoch covers every measurement, so record never evaluates inside a timed window.
    data = benchmark_data((args.warmup + args.steps) * args.batch_size)
    for model in args.models:
        args.model = model
        chosen_format(args, data)
        print_header(args, data)
        with tempfile.TemporaryDirectory(prefix="record-speed-") as tmp:
            workdir = Path(tmp)
            write_batches(workdir / "cifar", (data.train_x, data.train_y),
                          (data.test_x, data.test_y))
            timings = run_all(variants(args, data, workdir / "cifar", workdir), args.repeats,
                              args.batch_size)
        print_results(timings, args)
        print()


def main() -> None:
    args = parse_args()
    if args.sweep:
        from sweep_speed import time_sweep  # noqa: PLC0415 (its own module: the sweep mode)
        time_sweep(args)
    elif args.concurrent:
        from sweep_speed import time_concurrent  # noqa: PLC0415
        time_concurrent(args)
    else:
        compare_with_plain(args)


if __name__ == "__main__":
    main()
