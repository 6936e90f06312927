"""Loss surfaces: `landscape.surfaces.loss_surface` against the published peer
`loss-landscapes` (marcellodebernardi/loss-landscapes, `pip install loss-landscapes`), on the
same model, images, directions and grid.

Model: VGG-A-Light with BatchNorm (`vgg_light_bn`), seeded initialization (seed 0), trained
`--train-steps` SGD steps on the images so that the surface is not the one of the
initialization; BatchNorm in training mode (batch statistics) for both, as the peer evaluates
a model in whatever mode it is in. Images: the first `--images` of the embedded CIFAR-10
subset, normalized as `landscape record` does, in channels-last memory format for both.

Directions: two random filter-normalized directions drawn by `landscape.surfaces.
random_directions` (BN and bias entries zero, loss-landscape's default), given to both. The
peer's `random_plane` draws its own directions and rescales them by the model's norm, so the
peer is run through `planar_interpolation(start, end_one, end_two, metric, steps)` with the
start at the grid's corner and the ends placed so that its step along each direction is ours:
the same grid points. `planar_interpolation` (like `random_plane`, loss-landscapes 3.0.6)
moves one step along d₂ *before* the first evaluation of every even row and after the last of
every odd row, so its even rows are shifted one step along d₂ against its odd rows; the
comparison maps each of its values to the grid point it was really evaluated at.

Timed: the whole surface call for each, after one warm-up forward pass, alternating and
`--repeats` times, the best time of each; ours with its defaults (on a CPU one point per pass
on each of torch's threads where that measured faster than one point on all of them, the
measurement included in the time; vmap batches on a GPU), ours one point at a time on all
threads (the previous default), and, with `--compile`, ours through torch.compile (the first
call's time includes compiling, the repeats reuse it). Target (issue 29): ours ≥ 1.3× the
peer's speed per point, i.e. ≤ 0.77× its time for the same grid points.

Usage (from the repository root):
    .venv/bin/python benchmarks/curvature_surfaces.py                  # CPU, 21x21, 256 images
    .venv/bin/python benchmarks/curvature_surfaces.py --device cuda --chunk 32
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import torch
from torch import nn

from landscape.data import load_embedded
from landscape.models import build_model
from landscape.surfaces import loss_surface, random_directions
from landscape.surfaces.grid import coordinates


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def model_and_images(args, device: torch.device):
    data = load_embedded()
    x = torch.from_numpy(data.train_x[:args.images]).float().div(255).sub(0.5).div(0.5)
    y = torch.from_numpy(data.train_y[:args.images]).long()
    x = x.to(device).contiguous(memory_format=torch.channels_last)
    y = y.to(device)
    torch.manual_seed(0)
    model = build_model("vgg_light_bn").to(device, memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    model.train()
    for _ in range(args.train_steps):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    return model, x, y


def peer_surface(model, x, y, directions, alpha):
    """loss-landscapes' planar_interpolation on our grid: returns its [P, P] values placed at
    the grid points it evaluated (NaN where it evaluated off our grid or not at all)."""
    try:
        import loss_landscapes
        import loss_landscapes.metrics
    except ImportError:
        raise SystemExit("the peer is not installed: pip install loss-landscapes") from None

    points = len(alpha)
    step = alpha[1] - alpha[0]
    d1, d2 = directions

    def moved(c1: float, c2: float) -> nn.Module:
        m = copy.deepcopy(model)
        with torch.no_grad():
            for n, p in m.named_parameters():
                p.add_(c1 * d1[n] + c2 * d2[n])
        return m

    start = moved(alpha[0], alpha[0])
    # planar_interpolation steps (end − start) / steps along each direction.
    end_one = moved(alpha[0] + points * step, alpha[0])
    end_two = moved(alpha[0], alpha[0] + points * step)
    metric = loss_landscapes.metrics.Loss(nn.functional.cross_entropy, x, y)
    values = np.asarray(loss_landscapes.planar_interpolation(start, end_one, end_two, metric,
                                                             steps=points), dtype=np.float64)
    placed = np.full((points, points), np.nan)
    for i in range(points):
        if i % 2 == 0:  # evaluated one step along d₂ further than its column index says
            placed[i, 1:] = values[i, :-1]
        else:
            placed[i, :] = values[i, :]
    return placed, values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--points", type=int, default=21)
    parser.add_argument("--range", type=float, nargs=2, default=(-1.0, 1.0))
    parser.add_argument("--train-steps", type=int, default=20)
    parser.add_argument("--chunk", type=int, default=None,
                        help="ours: points per batched pass (default: 1 on CPU, from memory "
                             "on GPU)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--compile", action="store_true",
                        help="also time ours through torch.compile")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    model, x, y = model_and_images(args, device)
    directions = random_directions(dict(model.named_parameters()), 2, seed=0)
    alpha = coordinates(args.points, *args.range)
    with torch.no_grad():
        model(x)  # warm-up (cuDNN, allocator)
    sync(device)

    # Alternating, `--repeats` times each; the best time of each counts (the least disturbed
    # by other work on the machine).
    def ours_call(**how):
        return loss_surface(model, x, y, dims=2, points=args.points, low=args.range[0],
                            high=args.range[1], directions=directions, bn="train", **how)

    variants = {"default": dict(chunk=args.chunk), "one point at a time": dict(workers=1)}
    if args.compile:
        variants["torch.compile"] = dict(compile=True, workers=1)
    times = {name: [] for name in [*variants, "peer"]}
    surfaces = {}
    for _ in range(args.repeats):
        for name, how in variants.items():
            start = time.perf_counter()
            surfaces[name] = ours_call(**how)
            sync(device)
            times[name].append(time.perf_counter() - start)
        start = time.perf_counter()
        peer, raw = peer_surface(model, x, y, directions, alpha)
        sync(device)
        times["peer"].append(time.perf_counter() - start)
    ours, ours_s, peer_s = surfaces["default"], min(times["default"]), min(times["peer"])
    peer_name = "loss-landscapes 3.0.6 planar_interpolation"

    n = args.points ** 2
    both = np.isfinite(peer)
    diff = np.abs(ours.loss[both] - peer[both])
    rel = diff / np.abs(peer[both])
    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"vgg_light_bn after {args.train_steps} SGD steps, {args.images} images, "
          f"{args.points}x{args.points} grid on [{args.range[0]:g}, {args.range[1]:g}]², "
          f"BN in training mode")
    print(f"{'':44s} {'seconds':>8s} {'ms/point':>9s} {'points at once':>14s}")
    for name in variants:
        how = ("vmap " if surfaces[name].vectorized else "threads ") + str(
            surfaces[name].points_at_once)
        best = min(times[name])
        label = f"landscape loss_surface, {name}"
        print(f"{label:44s} {best:8.2f} {1e3 * best / n:9.2f} {how:>14s}")
        if name == "torch.compile":
            print(f"{'  (first call, compiling included)':44s} {times[name][0]:8.2f}")
    print(f"{peer_name:44s} {peer_s:8.2f} {1e3 * peer_s / n:9.2f} {1:>14d}")
    ratio = ours_s / peer_s
    verdict = "PASS" if ratio <= 1 / 1.3 else "MISS"
    print(f"time ratio ours (default) / peer: {ratio:.3f}, {peer_s / ours_s:.2f}x the peer's "
          f"speed per point (target >= 1.3x: {verdict})")
    print(f"values: {both.sum()} grid points evaluated by both; max |ours - peer| = "
          f"{diff.max():.3g} (max relative {rel.max():.3g}); loss at the centre "
          f"{ours.loss[args.points // 2, args.points // 2]:.6g}, range "
          f"{np.nanmin(ours.loss):.4g} to {np.nanmax(ours.loss):.4g}")
    shift = np.abs(raw[0, :-1] - ours.loss[0, :-1]).max()
    print(f"peer's even rows against our grid without the shift: max |diff| = {shift:.3g} "
          f"(its row 0 is evaluated one step along d2 off)")


if __name__ == "__main__":
    main()
