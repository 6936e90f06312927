"""`landscape record`'s Hessian options (--hessian-*), kept apart from the other options so
that the probe's flags, defaults and their mapping to HessianConfig live in one place."""

from __future__ import annotations

from dataclasses import replace

import click

from landscape.cli._types import CommaList
from landscape.config import HessianConfig
from landscape.config.hessian import STARTS, TRACE_METHODS

_DEFAULT = HessianConfig()

_OPTIONS = [
    click.option("--hessian-every", type=int, default=_DEFAULT.every, show_default=True,
                 help="Top Hessian eigenvalues (Lanczos) and trace (Hutchinson) of the "
                      "training objective at w_t on the step's batch, every N steps (0: off)."),
    click.option("--hessian-k", type=int, default=_DEFAULT.k, show_default=True,
                 help="How many of the largest Hessian eigenvalues."),
    click.option("--hessian-iters", type=int, default=_DEFAULT.iters, show_default=True,
                 help="At most this many Lanczos steps (Hessian-vector products)."),
    click.option("--hessian-tol", type=float, default=_DEFAULT.tol, show_default=True,
                 help="Stop Lanczos when each eigenvalue's residual bound is below this "
                      "fraction of it."),
    click.option("--hessian-start", type=click.Choice(STARTS), default=_DEFAULT.start,
                 show_default=True,
                 help="Start each Lanczos run from the previous probed step's Ritz vectors "
                      "(warm; random where that converged slower) or from a random vector."),
    click.option("--hessian-trace-samples", type=int, default=_DEFAULT.trace_samples,
                 show_default=True,
                 help="Rademacher vectors of the trace estimate (with --hessian-trace-se: at "
                      "most this many)."),
    click.option("--hessian-trace-method", type=click.Choice(TRACE_METHODS),
                 default=_DEFAULT.trace_method, show_default=True,
                 help="deflated: the Lanczos basis's part of the trace exactly, Hutchinson on "
                      "the rest (smaller standard error); hutchinson: plain Hutchinson."),
    click.option("--hessian-trace-deflate", type=int, default=_DEFAULT.trace_deflate,
                 show_default=True,
                 help="With the deflated trace, Lanczos takes at least this many steps (at "
                      "most --hessian-iters): the basis that deflates the trace."),
    click.option("--hessian-trace-se", type=float, default=_DEFAULT.trace_se,
                 show_default=True,
                 help="Draw as many trace vectors as this standard error relative to the "
                      "trace needs (e.g. 0.02), at most --hessian-trace-samples (0: exactly "
                      "--hessian-trace-samples)."),
    click.option("--hessian-density-at", type=CommaList(int), default=None,
                 help="Steps (e.g. 0,500,1000) at which to record the Hessian's spectral "
                      "density (stochastic Lanczos quadrature)."),
    click.option("--hessian-density-iters", type=int, default=_DEFAULT.density_iters,
                 show_default=True, help="Lanczos steps per density vector."),
    click.option("--hessian-density-vectors", type=int, default=_DEFAULT.density_vectors,
                 show_default=True, help="Random start vectors of the density."),
]


def hessian_options(command):
    """Decorate a command with the --hessian-* options."""
    for option in reversed(_OPTIONS):
        command = option(command)
    return command


def hessian_config(base: HessianConfig, changes: dict) -> HessianConfig:
    """`base` with the given --hessian-* options (by click's parameter names) applied."""
    fields = {name.removeprefix("hessian_"): value for name, value in changes.items()}
    if "density_at" in fields:
        fields["density_at"] = fields["density_at"] or ()
    return replace(base, **fields)
