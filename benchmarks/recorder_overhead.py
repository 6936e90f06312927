"""What `landscape.Recorder` costs a user's own training loop.

One process, one model, the same batches (the embedded CIFAR-10 images, normalized on the
device), the same optimizer; a plain PyTorch loop timed against the same loop with the
Recorder, in windows that alternate between the two (so that a neighbour's burst of work falls
on both), each window a fresh model and, for the Recorder, a fresh record:

  plain      zero_grad, forward, cross-entropy, backward, optimizer.step
  recorder   the same, with `rec.step((x, y), loss)` between backward and the step: per step the
             loss, ‖g_t‖, ‖g_t − g_{t−1}‖, ‖w_{t+1} − w_t‖, the applied gradient's norm and the
             default tap (the last linear layer's gradient and weight delta), handed to HDF5
             every 25 steps; no probe
  + probe    (with --probe N) the paper's probe every N steps, for its cost per probed step

Target (the issue's): the recorder with no probe within 5% of the plain loop's time per step,
printed with PASS / MISS. Timed: the loop's steps only (the record's creation at the first step
included, its closing after the loop not), median over --repeats windows.

Usage (from the repository root, on an otherwise idle machine; under the CPU lock beside others):
    flock /tmp/landscape-cpu.lock .venv/bin/python benchmarks/recorder_overhead.py
    .venv/bin/python benchmarks/recorder_overhead.py --model vgg --steps 20 --repeats 3
    .venv/bin/python benchmarks/recorder_overhead.py --device cuda --steps 400
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import landscape
from landscape.data import load_embedded
from landscape.models import build_model


def batches(device: torch.device, batch_size: int, steps: int):
    data = load_embedded()
    x = torch.from_numpy(data.train_x).to(device).float().div_(127.5).sub_(1.0)
    y = torch.from_numpy(data.train_y).to(device).long()
    n = len(y) // batch_size
    out = [(x[i * batch_size:(i + 1) * batch_size].contiguous(memory_format=torch.channels_last),
            y[i * batch_size:(i + 1) * batch_size]) for i in range(n)]
    return [out[i % n] for i in range(steps)]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def window(model_name: str, width: float, data, device, *, record: Path | None,
           probe_every: int = 0) -> float:
    """Seconds per step of one window of the loop (with the Recorder when `record`)."""
    torch.manual_seed(0)
    model = build_model(model_name, width=width).to(device, memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    rec = None
    if record is not None:
        rec = landscape.Recorder(record, model, optimizer, run_id=model_name,
                                 probe=landscape.ProbeConfig(every=probe_every))
    sync(device)
    start = time.perf_counter()
    for x, y in data:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        if rec is not None:
            rec.step((x, y), loss)
        optimizer.step()
    sync(device)
    seconds = time.perf_counter() - start
    if rec is not None:
        rec.close()
    return seconds / len(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="vgg_light")
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--steps", type=int, default=200, help="steps per window")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5, help="windows of each variant")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--probe", type=int, default=0,
                        help="also time the recorder with the probe every N steps")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    data = batches(device, args.batch_size, args.steps)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"model {args.model} (width {args.width:g}), batch {args.batch_size}, "
          f"{args.steps} steps per window, {args.repeats} windows each, device {device}, "
          f"{torch.get_num_threads()} threads, load average {load:.2f} at the start")
    variants = ["plain", "recorder"] + (["recorder + probe"] if args.probe else [])
    times: dict[str, list[float]] = {v: [] for v in variants}
    with tempfile.TemporaryDirectory() as folder:
        window(args.model, args.width, data[:args.warmup], device, record=None)
        window(args.model, args.width, data[:args.warmup], device,
               record=Path(folder) / "warm.h5")
        for r in range(args.repeats):
            order = variants[r % len(variants):] + variants[:r % len(variants)]
            for variant in order:
                path = None if variant == "plain" else Path(folder) / f"{variant}-{r}.h5"
                times[variant].append(window(
                    args.model, args.width, data, device, record=path,
                    probe_every=args.probe if variant == "recorder + probe" else 0))
    plain = statistics.median(times["plain"])
    print(f"{'variant':<18}{'ms/step (median)':>18}{'spread':>22}{'vs plain':>12}")
    for variant, values in times.items():
        median = statistics.median(values)
        spread = f"{min(values) * 1e3:.2f} to {max(values) * 1e3:.2f}"
        print(f"{variant:<18}{median * 1e3:>18.2f}{spread:>22}{median / plain:>12.3f}")
    overhead = statistics.median(times["recorder"]) / plain - 1
    print(f"recorder overhead with no probe: {overhead:+.1%} (target <= +5%): "
          f"{'PASS' if overhead <= 0.05 else 'MISS'}")
    if args.probe:
        per_probe = (statistics.median(times["recorder + probe"])
                     - statistics.median(times["recorder"])) * args.probe
        print(f"one probe (K = 8 points) costs {per_probe * 1e3:.1f} ms "
              f"({per_probe / plain:.1f} plain steps)")


if __name__ == "__main__":
    main()
