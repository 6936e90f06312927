"""Curvature instruments against the published peers, on the same model, batch and settings.

Part "hessian" (`--part surface` runs benchmarks/curvature_surfaces.py, the loss-surface
instrument against loss-landscapes; `--part training` benchmarks/curvature_training.py, λ_max
and the trace at 10 probed steps along an SGD run, our users' case; `--part all`, the default,
all three):
`landscape.probes.curvature` (the Hessian probe's Lanczos and Hutchinson) against PyHessian
(Yao et al. 2020, `pip install pyhessian`, its `hessian` class on a single batch), for each model
(default: vgg_light and vgg_light_bn), on one batch of embedded CIFAR-10 images after a short
SGD warm start (so that the spectrum is not that of the initialization):

  lambda_max   PyHessian's power iteration with its defaults (at most 100 products, relative
               tolerance 1e-3) and our Lanczos (relative residual bound 1e-3), each against a
               reference (our Lanczos run to a residual bound of 1e-7): products taken,
               seconds, relative error. Target: both within 1% of each other.
  equal HVPs   both methods forced to take exactly --hvps products (PyHessian with tol 0, ours
               with no stopping rule): seconds. Target: ours <= 0.5x PyHessian's time.
  trace        Hutchinson over --trace-samples Rademacher vectors in both (PyHessian with tol 0
               so that it takes them all): estimate +- standard error, seconds, and whether the
               two agree within 2 combined standard errors.

Both differentiate the same function: PyHessian puts the model in eval mode (`model.eval()` in
its constructor), which for a BatchNorm network is another function (running statistics instead
of the batch's); here its model is wrapped so that `eval()` leaves it in training mode, as the
probe measures. PyHessian's default (eval-mode) λ_max is printed too, as what its users get.

Usage (from the repository root, under the CPU lock on a shared machine):
    flock /tmp/landscape-cpu.lock .venv/bin/python benchmarks/curvature.py
    .venv/bin/python benchmarks/curvature.py --device cuda
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from landscape.probes.curvature import HessianOperator, lanczos
from landscape.probes.trace import hutchinson
from landscape.data import load_embedded
from landscape.models import build_model

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


REPEATS = 3  # set by --repeats


def timed(device: torch.device, fn: Callable):
    """(result, products, seconds) of the fastest of REPEATS calls of `fn() -> (result,
    products)` (other processes on a shared machine only ever slow a call down): the result, the
    product count and the time all belong to that same call. Each call seeds torch's global
    generator itself, so the repeats compute the same thing from the same start vector."""
    best = (None, 0, math.inf)
    for _ in range(REPEATS):
        sync(device)
        start = time.perf_counter()
        out, count = fn()
        sync(device)
        seconds = time.perf_counter() - start
        if seconds < best[2]:
            best = (out, count, seconds)
    return best


def batch(n: int, device: torch.device, offset: int = 0):
    data = load_embedded()
    x = torch.from_numpy(data.train_x[offset:offset + n]).float().div(255.0)
    if x.shape[-1] == 3:  # NHWC -> NCHW
        x = x.permute(0, 3, 1, 2)
    mean = torch.tensor(CIFAR_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR_STD).view(1, 3, 1, 1)
    return ((x - mean) / std).contiguous().to(device), \
        torch.from_numpy(data.train_y[offset:offset + n]).long().to(device)


def warm_model(name: str, device: torch.device, steps: int, batch_size: int) -> nn.Module:
    """The model after `steps` steps of SGD (lr 0.05) on other embedded images."""
    torch.manual_seed(0)
    model = build_model(name).to(device).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    for i in range(steps):
        x, y = batch(batch_size, device, offset=batch_size * (1 + i % 8))
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    opt.zero_grad(set_to_none=True)
    return model


class TrainMode(nn.Module):
    """The model, kept in training mode when PyHessian calls `eval()`, so that PyHessian
    differentiates the training objective (BatchNorm on batch statistics), as the probe does."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x)

    def train(self, mode: bool = True):
        return super().train(True)


class Counted:
    """Counts PyHessian's Hessian-vector products (its module-level function)."""

    def __init__(self, module) -> None:
        self.module, self.original, self.count = module, module.hessian_vector_product, 0

    def __enter__(self):
        def counting(*args, **kwargs):
            self.count += 1
            return self.original(*args, **kwargs)
        self.module.hessian_vector_product = counting
        return self

    def __exit__(self, *exc):
        self.module.hessian_vector_product = self.original


def pyhessian_module():
    """PyHessian's module `pyhessian.hessian` (the package's name `hessian` is its class)."""
    import importlib
    return importlib.import_module("pyhessian.hessian")


def pyhessian_run(model, x, y, device, what: Callable, seed: int):
    """(result, products, seconds) of `what(hessian)` with PyHessian on one batch, torch's
    global generator seeded with `seed` first (PyHessian draws its start vector from it), the
    construction (its forward and first backward with create_graph) included in the time."""
    ph = pyhessian_module()

    def run():
        with Counted(ph) as counter:
            torch.manual_seed(seed)
            model.zero_grad(set_to_none=True)
            h = ph.hessian(TrainMode(model), nn.functional.cross_entropy, data=(x, y),
                           cuda=device.type == "cuda")
            out = what(h)
        return out, counter.count
    out = timed(device, run)
    model.zero_grad(set_to_none=True)
    return out


def ours_run(model, x, y, device, what: Callable, seed: int):
    """(result, products, seconds) of `what(operator)`, construction included, torch's global
    generator seeded with `seed` first (as for PyHessian: `pyhessian_start` then draws the
    same start vector as PyHessian's power iteration)."""
    params = [p for p in model.parameters() if p.requires_grad]

    def run():
        torch.manual_seed(seed)
        op = HessianOperator(nn.functional.cross_entropy(model(x), y), params)
        return what(op), op.count
    return timed(device, run)


def pyhessian_start(op: HessianOperator) -> torch.Tensor:
    """PyHessian's start vector, drawn the way `hessian.eigenvalues` draws it (one
    `torch.randn` per parameter from the global generator, after the graph is built)."""
    return torch.cat([torch.randn(shape).reshape(-1) for shape in op.shapes]).to(op.device)


# Tolerances tried, loosest first, to reach a given accuracy (see `matched`).
OUR_TOLS = (1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 1e-5)
PH_TOLS = (1e-3, 3e-4, 1e-4, 3e-5, 1e-5, 3e-6, 1e-6)


def matched(run: Callable, tols, reference: float, accuracy: float):
    """The loosest tolerance in `tols` whose λ_max (`run(tol)` -> ((λ, ...), products,
    seconds), one timed repeat's) is within `accuracy` relative of `reference`: (tol, λ,
    products, seconds), or the tightest tried when none is."""
    for tol in tols:
        (lam, *_), products, seconds = run(tol)
        if abs(lam - reference) <= accuracy * abs(reference):
            break
    return tol, lam, products, seconds


def hessian_part(args) -> None:
    device = torch.device(args.device)
    torch.set_num_threads(args.threads) if args.threads else None
    x, y = batch(args.batch, device)
    gen = lambda seed: torch.Generator().manual_seed(seed)  # noqa: E731
    rows = []
    for name in args.models:
        model = warm_model(name, device, args.warm_steps, args.batch)
        params = [p for p in model.parameters() if p.requires_grad]
        n = sum(p.numel() for p in params)
        dtype = params[0].dtype

        def lanczos_top(tol, steps):
            def what(op):
                r = lanczos(op, pyhessian_start(op), steps, k=1, tol=tol)
                return float(r.ritz[-1]), float(r.residual[-1])
            return what

        def power(tol, iters):
            return lambda h: h.eigenvalues(maxIter=iters, tol=tol)[0]

        (ref, ref_res), ref_hvps, _ = ours_run(model, x, y, device, lanczos_top(1e-7, 300), 0)
        # λ_max to a tolerance: each method's own stopping rule, from the same start vector.
        (lam, _), lam_hvps, lam_s = ours_run(model, x, y, device, lanczos_top(1e-3, 100), 1)
        ph_vals, ph_hvps, ph_s = pyhessian_run(model, x, y, device, power(1e-3, 100), 1)
        ph_lam = float(ph_vals[0])
        # λ_max to a matched accuracy (1e-3 relative to the reference): each method at the
        # loosest of its tolerances that gets there, from the same start vector.
        m_tol, m_lam, m_hvps, m_s = matched(
            lambda tol: ours_run(model, x, y, device, lanczos_top(tol, 300), 1),
            OUR_TOLS, ref, args.accuracy)
        ph_m_tol, ph_m_lam, ph_m_hvps, ph_m_s = matched(
            lambda tol: pyhessian_run(model, x, y, device, power(tol, 1000), 1),
            PH_TOLS, ref, args.accuracy)
        # λ_max to high accuracy: ours to a residual bound of 1e-5 (a guarantee), PyHessian to a
        # relative change of 1e-6 between iterations (its only stopping rule).
        (lam_hi, _), hi_hvps, hi_s = ours_run(model, x, y, device, lanczos_top(1e-5, 300), 5)
        ph_hi_vals, ph_hi_hvps, ph_hi_s = pyhessian_run(model, x, y, device, power(1e-6, 1000), 5)
        ph_lam_hi = float(ph_hi_vals[0])
        # Equal numbers of products.
        _, eq_hvps, eq_s = ours_run(model, x, y, device, lanczos_top(0.0, args.hvps), 2)
        _, ph_eq_hvps, ph_eq_s = pyhessian_run(model, x, y, device, power(0.0, args.hvps), 2)
        # Trace: independent vectors (PyHessian's from torch's global generator seeded 1003, ours
        # from a generator seeded 3), so that the agreement test compares independent errors.
        est, tr_hvps, tr_s = ours_run(model, x, y, device, lambda op: hutchinson(
            op, op.n, args.trace_samples, generator=gen(3), dtype=dtype, device=device), 3)
        ph_quads, ph_tr_hvps, ph_tr_s = pyhessian_run(
            model, x, y, device, lambda h: h.trace(maxIter=args.trace_samples, tol=0.0), 1003)
        ph_quads = np.asarray(ph_quads, dtype=np.float64)
        ph_tr, ph_se = ph_quads.mean(), ph_quads.std(ddof=1) / math.sqrt(len(ph_quads))
        # What PyHessian's users get by default: the model in eval mode.
        ph = pyhessian_module()
        torch.manual_seed(4)
        default = ph.hessian(model, nn.functional.cross_entropy, data=(x, y),
                             cuda=device.type == "cuda")
        ph_eval = float(default.eigenvalues(maxIter=100, tol=1e-3)[0][0])
        model.train()
        rows.append(dict(
            model=name, n=n, ref=ref, ref_hvps=ref_hvps, ref_res=ref_res,
            lam=lam, lam_hvps=lam_hvps, lam_s=lam_s,
            ph_lam=ph_lam, ph_hvps=ph_hvps, ph_s=ph_s,
            m_tol=m_tol, m_lam=m_lam, m_hvps=m_hvps, m_s=m_s, ph_m_tol=ph_m_tol,
            ph_m_lam=ph_m_lam, ph_m_hvps=ph_m_hvps, ph_m_s=ph_m_s,
            lam_hi=lam_hi, hi_hvps=hi_hvps, hi_s=hi_s, ph_lam_hi=ph_lam_hi,
            ph_hi_hvps=ph_hi_hvps, ph_hi_s=ph_hi_s,
            eq_hvps=eq_hvps, eq_s=eq_s, ph_eq_hvps=ph_eq_hvps, ph_eq_s=ph_eq_s,
            tr=est.trace, tr_se=est.standard_error, tr_hvps=tr_hvps, tr_s=tr_s,
            ph_tr=ph_tr, ph_se=ph_se, ph_tr_hvps=ph_tr_hvps, ph_tr_s=ph_tr_s,
            ph_eval=ph_eval))
    print_hessian_table(rows, args)


def print_hessian_table(rows, args) -> None:
    print(f"Hessian: landscape.probes.curvature vs PyHessian {pyhessian_version()}; device "
          f"{args.device}, torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"batch {args.batch} embedded CIFAR-10 images, after {args.warm_steps} SGD steps; "
          f"BatchNorm in training mode in both; fastest of {args.repeats} timings (value, "
          f"products and time of that same repeat); the same start vector for both")
    for r in rows:
        print(f"\n{r['model']} ({r['n']:,} parameters); reference lambda_max {r['ref']:.6g} "
              f"(our Lanczos, {r['ref_hvps']} products, residual bound {r['ref_res']:.1e})")
        print(f"  {'':28s} {'ours (Lanczos)':>22s} {'PyHessian (power it.)':>24s}  ratio/agreement")
        rel_ours = abs(r['lam'] - r['ref']) / abs(r['ref'])
        rel_ph = abs(r['ph_lam'] - r['ref']) / abs(r['ref'])
        agree = abs(r['lam'] - r['ph_lam']) / abs(r['ph_lam'])
        print(f"  {'lambda_max, tol 1e-3':28s} {r['lam']:>22.6g} {r['ph_lam']:>24.6g}  "
              f"differ by {agree:.2%} ({'PASS' if agree <= 0.01 else 'MISS'} <= 1%)")
        print(f"  {'  error vs reference':28s} {rel_ours:>22.2e} {rel_ph:>24.2e}")
        print(f"  {'  products (HVPs)':28s} {r['lam_hvps']:>22d} {r['ph_hvps']:>24d}")
        t = r['lam_s'] / r['ph_s']
        print(f"  {'  seconds':28s} {r['lam_s']:>22.3f} {r['ph_s']:>24.3f}  ours/PyHessian "
              f"{t:.2f} ({'PASS' if t <= 0.5 else 'MISS'} <= 0.5)")
        rel_ours = abs(r['m_lam'] - r['ref']) / abs(r['ref'])
        rel_ph = abs(r['ph_m_lam'] - r['ref']) / abs(r['ref'])
        label = f"lambda_max to {args.accuracy:g} rel."
        print(f"  {label:28s} {r['m_lam']:>22.7g} {r['ph_m_lam']:>24.7g}  "
              f"ours: residual bound {r['m_tol']:g}; PyHessian: tol {r['ph_m_tol']:g}")
        print(f"  {'  error vs reference':28s} {rel_ours:>22.2e} {rel_ph:>24.2e}"
              + ("" if max(rel_ours, rel_ph) <= args.accuracy else "  (NOT REACHED)"))
        print(f"  {'  products (HVPs)':28s} {r['m_hvps']:>22d} {r['ph_m_hvps']:>24d}")
        t = r['m_s'] / r['ph_m_s']
        print(f"  {'  seconds':28s} {r['m_s']:>22.3f} {r['ph_m_s']:>24.3f}  ours/PyHessian "
              f"{t:.2f} ({'PASS' if t <= 0.5 else 'MISS'} <= 0.5)")
        rel_ours = abs(r['lam_hi'] - r['ref']) / abs(r['ref'])
        rel_ph = abs(r['ph_lam_hi'] - r['ref']) / abs(r['ref'])
        print(f"  {'lambda_max, high accuracy':28s} {r['lam_hi']:>22.7g} {r['ph_lam_hi']:>24.7g}  "
              f"ours: residual bound 1e-5; PyHessian: tol 1e-6")
        print(f"  {'  error vs reference':28s} {rel_ours:>22.2e} {rel_ph:>24.2e}")
        print(f"  {'  products (HVPs)':28s} {r['hi_hvps']:>22d} {r['ph_hi_hvps']:>24d}")
        t = r['hi_s'] / r['ph_hi_s']
        print(f"  {'  seconds':28s} {r['hi_s']:>22.3f} {r['ph_hi_s']:>24.3f}  ours/PyHessian "
              f"{t:.2f} ({'PASS' if t <= 0.5 else 'MISS'} <= 0.5)")
        t = r['eq_s'] / r['ph_eq_s']
        label = f"equal: {r['eq_hvps']} vs {r['ph_eq_hvps']} HVPs, s"
        print(f"  {label:28s} {r['eq_s']:>22.3f} {r['ph_eq_s']:>24.3f}  ours/PyHessian "
              f"{t:.2f} ({'PASS' if t <= 0.5 else 'MISS'} <= 0.5)")
        combined = math.hypot(r['tr_se'], r['ph_se'])
        ok = abs(r['tr'] - r['ph_tr']) <= 2 * combined
        ours_tr = f"{r['tr']:.5g} +- {r['tr_se']:.2g}"
        ph_tr = f"{r['ph_tr']:.5g} +- {r['ph_se']:.2g}"
        print(f"  {'trace +- s.e.':28s} {ours_tr:>22s} {ph_tr:>24s}  differ by "
              f"{abs(r['tr'] - r['ph_tr']) / combined:.2f} s.e. "
              f"({'PASS' if ok else 'MISS'} <= 2)")
        t = r['tr_s'] / r['ph_tr_s']
        label = f"  {r['tr_hvps']} vs {r['ph_tr_hvps']} HVPs, seconds"
        print(f"  {label:28s} {r['tr_s']:>22.3f} {r['ph_tr_s']:>24.3f}  ours/PyHessian "
              f"{t:.2f} ({'PASS' if t <= 0.5 else 'MISS'} <= 0.5)")
        print(f"  PyHessian's default (model.eval(): BatchNorm on running statistics) "
              f"lambda_max: {r['ph_eval']:.6g}")


def pyhessian_version() -> str:
    try:
        from importlib.metadata import version
        return version("pyhessian")
    except Exception:  # noqa: BLE001 (a version string only)
        return "?"


def surface_part(args) -> None:
    """Part "surface": benchmarks/curvature_surfaces.py (our filter-normalized 2D surface against
    loss-landscapes on the same directions and grid), run as it is with this device; run that
    script directly to change its own options (grid, images, chunk)."""
    script = Path(__file__).with_name("curvature_surfaces.py")
    print(f"\nSurface: {script.name} --device {args.device}", flush=True)
    subprocess.run([sys.executable, str(script), "--device", args.device], check=True)


def training_part(args) -> None:
    """Part "training": benchmarks/curvature_training.py (curvature along an SGD run)."""
    from curvature_training import training_part as along_training
    along_training(args)


PARTS = {"hessian": hessian_part, "surface": surface_part, "training": training_part}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=[*PARTS, "all"], default="all")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--models", type=lambda s: s.split(","),
                        default=["vgg_light", "vgg_light_bn"])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--warm-steps", type=int, default=50)
    parser.add_argument("--hvps", type=int, default=30,
                        help="products per method in the equal-HVP timing")
    parser.add_argument("--trace-samples", type=int, default=50)
    parser.add_argument("--accuracy", type=float, default=1e-3,
                        help="relative error of lambda_max for the matched-accuracy row")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="time each measurement this often and keep the fastest")
    from curvature_training import add_arguments
    add_arguments(parser)
    args = parser.parse_args()
    global REPEATS
    REPEATS = args.repeats
    for name, part in PARTS.items():
        if args.part in (name, "all"):
            part(args)


if __name__ == "__main__":
    main()
