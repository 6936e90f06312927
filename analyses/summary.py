"""Compare two models (e.g. "vgg" vs "vgg_bn") metric by metric, in a small text table."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np

from ._checks import as_curve, as_real, check_mode

WidthKind = Literal["difference", "ratio"]
Phase = Literal["all", "early", "late"]
PHASES: tuple[str, ...] = get_args(Phase)


def band_width(low: Any, high: Any, *, kind: WidthKind = "difference") -> np.ndarray:
    """Width of a band, elementwise; float64 with the shape of ``low`` and ``high``.

    kind="difference": high − low (linear axis).
    kind="ratio":      high / low, the width on a LOG axis (the band spans log10(high/low)
                       decades); meant for the loss band. NaN where low <= 0, which a log axis
                       cannot show.
    NaN in either input gives NaN; +inf high gives inf (inf − inf and inf/inf give NaN).

    Raises ValueError if shapes differ or high < low anywhere (arguments likely swapped).
    """
    check_mode(kind, get_args(WidthKind), "kind")
    lo = as_real(low, "low")
    hi = as_real(high, "high")
    if lo.shape != hi.shape:
        raise ValueError(f"low and high must have the same shape, got {lo.shape} and {hi.shape}")
    bad = np.flatnonzero(np.ravel(hi < lo))
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"high < low at flat index {i} ({np.ravel(hi)[i]!r} < {np.ravel(lo)[i]!r}); "
            "are low and high swapped?"
        )
    with np.errstate(invalid="ignore", divide="ignore"):
        if kind == "difference":
            return hi - lo
        out = hi / lo
    out[~(lo > 0)] = np.nan
    return out


@dataclass(frozen=True)
class ComparisonRow:
    """One metric in one phase: medians over the finite values of all runs, and their ratio.

    ratio = median_a / median_b (inf if median_b = 0 < median_a, NaN if either is NaN or both 0).
    n_a, n_b: how many finite values each median was taken over (0 gives a NaN median).
    """

    metric: str
    phase: str
    median_a: float
    median_b: float
    ratio: float
    n_a: int
    n_b: int


@dataclass(frozen=True)
class Comparison:
    """Rows for every metric × phase ("all", "early", "late"), in the order of the metrics.

    Phases: early = steps < split_step, late = steps >= split_step, with
    split_step = first_step + early_fraction · (last_step − first_step) over ALL curves of both
    models and all metrics, so both models are cut at the same step.
    """

    name_a: str
    name_b: str
    first_step: int
    last_step: int
    split_step: float
    rows: tuple[ComparisonRow, ...]

    def row(self, metric: str, phase: Phase) -> ComparisonRow:
        """The row for ``metric`` in ``phase``; ValueError if there is none."""
        for r in self.rows:
            if r.metric == metric and r.phase == phase:
                return r
        metrics = sorted({r.metric for r in self.rows})
        raise ValueError(f"no row for metric {metric!r}, phase {phase!r}; metrics are {metrics}")

    def to_text(self) -> str:
        """An aligned plain-text table (numbers to 4 significant digits)."""
        a, b = self.name_a, self.name_b
        header = ("metric", "phase", f"median {a}", f"median {b}", f"{a}/{b}", f"n {a}", f"n {b}")
        body = [
            (r.metric, r.phase, f"{r.median_a:.4g}", f"{r.median_b:.4g}", f"{r.ratio:.4g}",
             str(r.n_a), str(r.n_b))
            for r in self.rows
        ]
        widths = [max(len(line[c]) for line in [header, *body]) for c in range(len(header))]

        def fmt(line: tuple[str, ...]) -> str:
            # Names left-aligned, numbers right-aligned so their digits line up.
            cells = [line[0].ljust(widths[0]), line[1].ljust(widths[1])]
            cells += [cell.rjust(w) for cell, w in zip(line[2:], widths[2:])]
            return "  ".join(cells).rstrip()

        title = (
            f"{a} vs {b}: medians over finite values of all runs; steps {self.first_step}"
            f"-{self.last_step}, early < {self.split_step:g} <= late"
        )
        rule = "-" * len(fmt(header))
        return "\n".join([title, fmt(header), rule, *(fmt(line) for line in body)])


def _parse_series(series: Mapping[str, Sequence[Any]], label: str) -> dict[str, list]:
    if not isinstance(series, Mapping):
        raise ValueError(f"{label} must map metric names to lists of (step, values) curves")
    parsed = {}
    for metric, curves in series.items():
        curves = list(curves)
        if not curves:
            raise ValueError(f"{label}[{metric!r}] has no curves")
        parsed[metric] = [as_curve(c, f"{label}[{metric!r}][{i}]") for i, c in enumerate(curves)]
    return parsed


def _median(curves: list, mask_of) -> tuple[float, int]:
    vals = np.concatenate([v[mask_of(s)] for s, v in curves])
    vals = vals[np.isfinite(vals)]
    return (float(np.median(vals)) if vals.size else math.nan), int(vals.size)


def compare_models(
    name_a: str,
    series_a: Mapping[str, Sequence[Any]],
    name_b: str,
    series_b: Mapping[str, Sequence[Any]],
    *,
    early_fraction: float = 0.5,
) -> Comparison:
    """Median of each metric per model and phase, and the ratio model a / model b.

    For metric m, phase p and model x:
        median_x = median{ v_r(s) finite : r a run of x, s a step of run r in phase p }
    (NaN and ±inf are left out; n_x counts the values used). ratio = median_a / median_b.

    Args:
        name_a, name_b: model names for the table (e.g. "vgg", "vgg_bn").
        series_a, series_b: metric name → list of (step int [N], values real [N]) curves, one per
            run; both must have the same metric names.
        early_fraction: in (0, 1); the early phase is the first early_fraction of the step range
            (see ``Comparison`` for the exact split).
    Returns:
        Comparison with 3 rows (all, early, late) per metric, metrics in the order of series_a.
    """
    for label, name in (("name_a", name_a), ("name_b", name_b)):
        if not isinstance(name, str) or not name:
            raise ValueError(f"{label} must be a non-empty string, got {name!r}")
    if isinstance(early_fraction, bool) or not isinstance(early_fraction, (int, float)):
        raise ValueError(f"early_fraction must be a number in (0, 1), got {early_fraction!r}")
    if not 0 < early_fraction < 1:
        raise ValueError(f"early_fraction must be in (0, 1), got {early_fraction!r}")
    pa = _parse_series(series_a, "series_a")
    pb = _parse_series(series_b, "series_b")
    if not pa:
        raise ValueError("series_a is empty: need at least one metric")
    if set(pa) != set(pb):
        raise ValueError(
            f"series_a and series_b must have the same metrics; only in series_a: "
            f"{sorted(set(pa) - set(pb))}, only in series_b: {sorted(set(pb) - set(pa))}"
        )

    all_steps = [s for p in (pa, pb) for curves in p.values() for s, _ in curves]
    first = int(min(s[0] for s in all_steps))
    last = int(max(s[-1] for s in all_steps))
    split = first + early_fraction * (last - first)
    masks = {
        "all": lambda s: np.ones(s.shape, dtype=bool),
        "early": lambda s: s < split,
        "late": lambda s: s >= split,
    }

    rows = []
    for metric in pa:
        for phase in PHASES:
            med_a, n_a = _median(pa[metric], masks[phase])
            med_b, n_b = _median(pb[metric], masks[phase])
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = float(np.divide(med_a, med_b))
            rows.append(ComparisonRow(metric, phase, med_a, med_b, ratio, n_a, n_b))
    return Comparison(name_a, name_b, first, last, split, tuple(rows))
