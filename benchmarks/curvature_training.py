"""Curvature along training, our users' case: λ_max and the trace of the Hessian at 10 probed
steps of one SGD run, ours (the Hessian probe's Lanczos warm-started from the previous probed
step's Ritz vectors, the trace deflated by its basis) against PyHessian called at each step as
its README shows (`hessian(model, criterion, data=(x, y)).eigenvalues()` / `.trace()`: power
iteration and plain Hutchinson from scratch every time). Part "training" of
benchmarks/curvature.py (`--part training`).

The run: `--models` (vgg_light, vgg_light_bn), seeded initialization (seed 0), plain SGD at
`--lr` on batches of `--batch` embedded CIFAR-10 images drawn in a seeded random order;
`--warm-steps` steps, then a probed step every `--every` steps, `--probes` of them. At each
probed step the Hessian of the training loss on that step's batch at w_t, BatchNorm in training
mode in both tools (PyHessian's `eval()` is kept from switching it, see curvature.TrainMode).
Every time includes building the gradient's graph, and the device is synchronized.

λ_max to `--accuracy` (1e-3) relative: each method's error against a reference (our cold
Lanczos to a residual bound of 1e-7) at every probed step. As a user fixes one setting for a
run, each method uses the loosest tolerance of its ladder that is within the accuracy at every
probed step (ours: residual bound; PyHessian: relative change between power iterations); its
products and seconds summed over the probed steps. PyHessian's README default (tol 1e-3, at
most 100 iterations) is printed beside it with its largest error. Target: ours ≤ 0.5× the time.

Trace to `--trace-se` (2%) relative standard error: ours deflated (the probe's call: warm
Lanczos to the λ_max tolerance, at least `--deflate` steps, then Hutchinson on the rest with
its two-stage rule: a pilot of 10 vectors, then as many as the target needs); PyHessian's
plain Hutchinson given exactly the number of vectors that reaches the target at that step (an
oracle in its favour: the count comes from the spread of the vectors its README call drew,
untimed), `trace(maxIter=count, tol=0)`. Standard errors are the samples' (PyHessian returns
its samples; it computes none). Target: ours ≤ 0.5× the time at a standard error no larger
than PyHessian's (mean over the probed steps, 10% slack); agreement within 2 combined standard
errors at most steps. Ours costs the Lanczos products too: the trace alone, not λ_max for free.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from curvature import (CIFAR_MEAN, CIFAR_STD, Counted, TrainMode, pyhessian_module,
                       pyhessian_version, sync)
from landscape.data import load_embedded
from landscape.models import build_model
from landscape.probes.curvature import HessianOperator, LanczosStarts, top_eigenvalues
from landscape.probes.trace import deflated_hutchinson, lanczos_trace

OUR_TOLS = (3e-2, 1e-2, 3e-3, 1e-3, 3e-4)
PH_TOLS = (1e-3, 3e-4, 1e-4, 3e-5, 1e-5)
REFERENCE_TOL = 1e-7


@dataclass
class Point:
    """One probed step: the model's state at w_t and the step's batch."""

    step: int
    state: dict
    x: torch.Tensor
    y: torch.Tensor


def trajectory(name: str, device: torch.device, args) -> tuple[nn.Module, list[Point]]:
    """The SGD run, with the states and batches of its probed steps."""
    data = load_embedded()
    images = torch.from_numpy(data.train_x).float().div(255.0)
    mean = torch.tensor(CIFAR_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR_STD).view(1, 3, 1, 1)
    images = ((images - mean) / std).to(device)
    labels = torch.from_numpy(data.train_y).long().to(device)
    torch.manual_seed(0)
    model = build_model(name).to(device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
    order = torch.Generator().manual_seed(0)
    batches = []
    points = []
    last = args.warm_steps + (args.probes - 1) * args.every
    for step in range(last + 1):
        if not batches:
            perm = torch.randperm(len(labels), generator=order).to(device)
            batches = list(perm.split(args.batch))[: len(labels) // args.batch][::-1]
        index = batches.pop()
        x, y = images[index], labels[index]
        if step >= args.warm_steps and (step - args.warm_steps) % args.every == 0:
            points.append(Point(step, copy.deepcopy(model.state_dict()), x, y))
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return model, points


@dataclass
class Run:
    """One method along the probed steps: a value, products and seconds per step."""

    values: list[float] = field(default_factory=list)
    products: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    errors: list[float] = field(default_factory=list)  # the trace's standard errors
    warm: list[bool] = field(default_factory=list)

    def add(self, value, products, seconds, error=math.nan, warm=False):
        self.values.append(float(value))
        self.products.append(int(products))
        self.seconds.append(seconds)
        self.errors.append(float(error))
        self.warm.append(bool(warm))

    def worst(self, reference) -> float:
        return max(abs(v - r) / abs(r) for v, r in zip(self.values, reference))


def _operator(model, point: Point, params) -> HessianOperator:
    model.load_state_dict(point.state)
    return HessianOperator(nn.functional.cross_entropy(model(point.x), point.y), params)


def ours_lambda(model, points, tol: float, device, *, warm: bool) -> Run:
    """Our λ_max at each point in order (warm: one LanczosStarts along them)."""
    params = [p for p in model.parameters() if p.requires_grad]
    starts = LanczosStarts() if warm else None
    run = Run()
    for i, point in enumerate(points):
        sync(device)
        start = time.perf_counter()
        op = _operator(model, point, params)
        top = top_eigenvalues(op, op.n, 1, max_steps=300, tol=tol,
                              generator=torch.Generator().manual_seed(i), dtype=op.dtype,
                              device=op.device, starts=starts)
        sync(device)
        run.add(top.values[0], op.count, time.perf_counter() - start, warm=top.warm_start)
    return run


def ours_probe(model, points, tol: float, device, args) -> tuple[Run, Run]:
    """The probe's call at each point: warm λ_max, then the deflated trace to --trace-se
    (λ_max and trace runs; the time and products of both are the trace run's)."""
    params = [p for p in model.parameters() if p.requires_grad]
    starts = LanczosStarts()
    lam, trace = Run(), Run()
    for i, point in enumerate(points):
        sync(device)
        start = time.perf_counter()
        op = _operator(model, point, params)
        generator = torch.Generator().manual_seed(i)
        top = top_eigenvalues(op, op.n, 1, max_steps=300, tol=tol, generator=generator,
                              dtype=op.dtype, device=op.device, starts=starts,
                              min_steps=args.deflate, keep_basis=True)
        est = deflated_hutchinson(op, top.lanczos.basis, lanczos_trace(top.lanczos.alpha),
                                  args.max_samples, generator=generator,
                                  target_se=args.trace_se)
        sync(device)
        seconds = time.perf_counter() - start
        lam.add(top.values[0], top.steps, seconds, warm=top.warm_start)
        trace.add(est.trace, op.count, seconds, est.standard_error, top.warm_start)
    return lam, trace


def pyhessian_calls(model, points, device, what, seed: int = 1) -> Run:
    """`what(hessian, i)` -> (value, error) with PyHessian at each point, torch's global
    generator seeded first (its random vectors come from it), the construction timed."""
    ph = pyhessian_module()
    run = Run()
    for i, point in enumerate(points):
        model.load_state_dict(point.state)
        with Counted(ph) as counter:
            torch.manual_seed(seed * 1000 + i)
            model.zero_grad(set_to_none=True)
            sync(device)
            start = time.perf_counter()
            h = ph.hessian(TrainMode(model), nn.functional.cross_entropy,
                           data=(point.x, point.y), cuda=device.type == "cuda")
            value, error = what(h, i)
            sync(device)
            seconds = time.perf_counter() - start
        run.add(value, counter.count, seconds, error)
        del h
    model.zero_grad(set_to_none=True)
    return run


def power(tol: float, iters: int):
    return lambda h, i: (float(h.eigenvalues(maxIter=iters, tol=tol)[0][0]), math.nan)


def mean_and_se(samples) -> tuple[float, float]:
    q = np.asarray(samples, dtype=np.float64)
    return float(q.mean()), float(q.std(ddof=1) / math.sqrt(len(q)))


def first_accurate(runs, reference, accuracy):
    """The first (loosest) (tol, run) of `runs` (an iterator) within `accuracy` at every
    point, or the last tried."""
    for tol, run in runs:
        if run.worst(reference) <= accuracy:
            break
    return tol, run


def training_part(args) -> None:
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"\nAlong training: landscape (warm-started Lanczos, deflated trace) vs PyHessian "
          f"{pyhessian_version()} called at each step; device {device}, torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads; SGD lr {args.lr}, batch "
          f"{args.batch} embedded CIFAR-10 images; {args.probes} probed steps, every "
          f"{args.every} steps from step {args.warm_steps}; BatchNorm in training mode in both",
          flush=True)
    for name in args.models:
        started = time.perf_counter()
        model, points = trajectory(name, device, args)
        one_model(name, model, points, device, args)
        print(f"  ({name}: {time.perf_counter() - started:.0f} s for this model's part)",
              flush=True)


def one_model(name, model, points, device, args) -> None:
    reference = ours_lambda(model, points, REFERENCE_TOL, device, warm=False).values
    acc = args.accuracy
    tol, ours = first_accurate(((t, ours_lambda(model, points, t, device, warm=True))
                                for t in OUR_TOLS), reference, acc)
    cold = ours_lambda(model, points, tol, device, warm=False)
    readme = pyhessian_calls(model, points, device, power(1e-3, 100))
    ph_tol, ph = first_accurate(
        ((t, readme if t == 1e-3 and readme.worst(reference) <= acc else
          pyhessian_calls(model, points, device, power(t, 1000))) for t in PH_TOLS),
        reference, acc)
    n = sum(p.numel() for p in model.parameters())
    print(f"\n{name} ({n:,} parameters), steps {', '.join(str(p.step) for p in points)}; "
          f"reference lambda_max {min(reference):.4g} to {max(reference):.4g}")
    header = f"  {'':34s} {'tol':>7s} {'HVPs':>6s} {'seconds':>8s} {'max rel. error':>15s}"
    print(header)
    rows = [("ours, warm starts", tol, ours), ("ours, random starts (same tol)", tol, cold),
            ("PyHessian README (tol 1e-3)", 1e-3, readme),
            (f"PyHessian to {acc:g}", ph_tol, ph)]
    for label, t, run in rows:
        print(f"  {label:34s} {t:7.0e} {sum(run.products):6d} {sum(run.seconds):8.2f} "
              f"{run.worst(reference):15.2e}")
    print(f"  warm starts used at {sum(ours.warm)} of {len(points)} probed steps")
    _verdict(f"lambda_max to {acc:g}: ours / PyHessian time", sum(ours.seconds),
             sum(ph.seconds), ours.worst(reference) <= acc and ph.worst(reference) <= acc)
    trace_rows(model, points, device, args, tol)


def trace_rows(model, points, device, args, tol) -> None:
    target = args.trace_se
    readme = pyhessian_calls(model, points, device,
                             lambda h, i: mean_and_se(h.trace()), seed=2)
    counts = []
    for value, error, samples in zip(readme.values, readme.errors, readme.products):
        spread = error * math.sqrt(samples)  # the per-vector spread its README call saw
        counts.append(max(2, min(args.max_samples, math.ceil((spread / (target * abs(value)))
                                                                 ** 2))))
    ph = pyhessian_calls(model, points, device,
                         lambda h, i: mean_and_se(h.trace(maxIter=counts[i], tol=0.0)), seed=3)
    _, ours = ours_probe(model, points, tol, device, args)
    combined = [math.hypot(a, b) for a, b in zip(ours.errors, ph.errors)]
    agree = sum(abs(a - b) <= 2 * c for a, b, c in zip(ours.values, ph.values, combined))
    rel = lambda run: np.mean([e / abs(v) for v, e in zip(run.values, run.errors)])  # noqa: E731
    print(f"  trace to {target:g} relative s.e.  {'HVPs':>6s} {'seconds':>8s} "
          f"{'mean rel. s.e.':>15s}")
    for label, run in (("ours, deflated (incl. Lanczos)", ours),
                       ("PyHessian, vectors for the s.e.", ph),
                       ("PyHessian README (tol 1e-3)", readme)):
        print(f"  {label:34s} {sum(run.products):6d} {sum(run.seconds):8.2f} "
              f"{rel(run):15.3f}")
    print(f"  traces agree within 2 combined s.e. at {agree} of {len(points)} probed steps "
          f"({ours.values[0]:.5g} vs {ph.values[0]:.5g} at the first)")
    _verdict(f"trace to {target:g} s.e.: ours / PyHessian time", sum(ours.seconds),
             sum(ph.seconds), rel(ours) <= 1.1 * rel(ph))


def _verdict(label: str, ours: float, peer: float, valid: bool) -> None:
    ratio = ours / peer
    verdict = ("PASS" if ratio <= 0.5 else "MISS") if valid else "MISS (accuracy not matched)"
    print(f"  {label} {ratio:.2f} ({verdict} <= 0.5; {peer / ours:.2f}x faster)")


def add_arguments(parser) -> None:
    parser.add_argument("--lr", type=float, default=0.05, help="the run's SGD learning rate")
    parser.add_argument("--probes", type=int, default=10, help="probed steps")
    parser.add_argument("--every", type=int, default=20, help="SGD steps between probes")
    parser.add_argument("--trace-se", type=float, default=0.02,
                        help="the trace's target standard error, relative")
    parser.add_argument("--deflate", type=int, default=20,
                        help="ours: Lanczos steps whose basis deflates the trace")
    parser.add_argument("--max-samples", type=int, default=2000,
                        help="the most trace vectors either method draws at one step")
