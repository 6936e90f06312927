"""The Hessian probe's options (part of RecordingConfig; see docs/measurements.md)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from landscape.config.field_types import check_field_types, check_finite
from landscape.errors import ConfigError, field_ref as ref


STARTS = ("warm", "random")
TRACE_METHODS = ("deflated", "hutchinson")
# What records made before these options used (read back with them: config.record.from_dict).
BEFORE_WARM_STARTS = {"start": "random", "trace_method": "hutchinson"}


@dataclass(frozen=True)
class HessianConfig:
    """The Hessian of the training objective at w_t on the step's batch B_t.

    Every `every` steps (0: never): the `k` largest eigenvalues by Lanczos (at most `iters`
    steps, stopping when each has a relative residual bound below `tol`), started from the
    previous probed step's Ritz vectors (`start` "warm", falling back to a random vector where
    that converged slower) or from a random vector at every probed step ("random"); and the
    trace by Hutchinson's estimator over `trace_samples` Rademacher vectors, with its standard
    error: deflated by the Lanczos basis (`trace_method` "deflated": Lanczos then takes at
    least `trace_deflate` steps, at most `iters`, whose part of the trace is exact) or plain
    ("hutchinson"). With `trace_se` > 0 the number of vectors is chosen for that standard
    error relative to the trace (a pilot of 10 vectors measures their spread), at most
    `trace_samples`. At the steps `density_at` (whether or not `every` is on): the spectral
    density by stochastic Lanczos quadrature, `density_iters` Lanczos steps from each of
    `density_vectors` random vectors.
    """

    every: int = 0
    k: int = 1
    iters: int = 40
    tol: float = 1e-3
    trace_samples: int = 20
    start: str = "warm"
    trace_method: str = "deflated"
    trace_deflate: int = 20
    trace_se: float = 0.0
    density_at: tuple[int, ...] = ()
    density_iters: int = 40
    density_vectors: int = 1

    def __post_init__(self) -> None:
        check_field_types(self, "recording.hessian.")  # first: types, then the rest
        object.__setattr__(self, "density_at", tuple(self.density_at))  # lists from JSON

    @property
    def enabled(self) -> bool:
        return self.every > 0 or bool(self.density_at)

    def validate(self) -> None:
        field = "recording.hessian."
        if self.every < 0:
            raise ConfigError(f"{ref(field + 'every')} must be >= 0 (0 disables it), got "
                              f"{self.every}")
        for name, least in (("k", 1), ("trace_samples", 2), ("density_iters", 2),
                            ("density_vectors", 1)):
            value = getattr(self, name)
            if value < least:
                why = " (the standard error needs two)" if name == "trace_samples" else ""
                raise ConfigError(f"{ref(field + name)} must be at least {least}{why}, got "
                                  f"{value}")
        if self.iters < self.k:
            raise ConfigError(f"{ref(field + 'iters')} ({self.iters}) must be at least "
                              f"{ref(field + 'k')} ({self.k}): Lanczos finds at most one "
                              f"eigenvalue per step")
        for name, choices in (("start", STARTS), ("trace_method", TRACE_METHODS)):
            if getattr(self, name) not in choices:
                raise ConfigError(f"{ref(field + name)} must be one of {', '.join(choices)}, "
                                  f"got {getattr(self, name)!r}")
        if self.trace_deflate < 0:
            raise ConfigError(f"{ref(field + 'trace_deflate')} must be >= 0, got "
                              f"{self.trace_deflate}")
        if not (0 <= self.trace_se < 1):  # also refuses nan
            raise ConfigError(f"{ref(field + 'trace_se')} is a standard error relative to the "
                              f"trace between 0 (off) and 1 (e.g. 0.02), got {self.trace_se}")
        if not (0 < self.tol < 1) or not math.isfinite(self.tol):
            raise ConfigError(f"{ref(field + 'tol')} is a relative tolerance between 0 and 1 "
                              f"(e.g. 1e-3), got {self.tol}")
        if any(s < 0 for s in self.density_at):
            raise ConfigError(f"{ref(field + 'density_at')} takes step numbers >= 0, got "
                              f"{', '.join(map(str, self.density_at))}")
        if len(set(self.density_at)) != len(self.density_at):
            raise ConfigError(f"a step is listed twice in {ref(field + 'density_at')}: "
                              f"{', '.join(map(str, self.density_at))}")
