"""The ablation table: one row per run group (a model at one learning rate and one level of
each axis that applies to it), with held-out accuracy (final and best), training time, final
losses and the landscape metrics' medians, each with a 95% interval over the group's seeds.

As plain data for other renderers (HTML, notebooks): `ablation_rows` (a list of dicts, one per
group), `ablation_array` (a numpy structured array), `ablation_frame` (a pandas DataFrame,
where pandas is installed); `ablation_text` is the table of `summary.txt`.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

from analyses.confidence import RatioEstimate, bootstrap_ratio
from landscape.config.axes import format_value
from landscape.errors import ConfigError
from landscape.report.compare import _metric_curves
from landscape.report.course import trajectory_source
from landscape.report.runs import LoadedRun, report_axes

# Per-run numbers of the table (one value per seed), then the landscape metrics (per run: the
# values at every probed or recorded step, pooled over seeds as the verdict pools them).
RUN_VALUES: dict[str, Callable[[LoadedRun], float]] = {
    "final_test_acc": lambda r: _last(r.data.eval.test_acc),
    "best_test_acc": lambda r: _best(r.data.eval.test_acc),
    "final_train_loss": lambda r: _last(r.data.eval.train_loss),
    "final_test_loss": lambda r: _last(r.data.eval.test_loss),
    "seconds": lambda r: float(r.info.seconds),
}
LANDSCAPE_METRICS = ("predictiveness", "beta", "loss_band_width", "grad_change",
                     "trajectory_beta", "hessian_lambda_max", "hessian_trace")
_HEADS = {"final_test_acc": "final acc (%)", "best_test_acc": "best acc (%)",
          "final_train_loss": "final train loss", "final_test_loss": "final test loss",
          "seconds": "wall-clock seconds per run"}


def _last(values: np.ndarray) -> float:
    return float(values[-1]) if len(values) else math.nan


def _best(values: np.ndarray) -> float:
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    return float(finite.max()) if len(finite) else math.nan


def _median_over(per_seed: Sequence[np.ndarray]) -> RatioEstimate:
    """The median of the chosen seeds' values pooled, with its interval over seeds as the
    verdicts make theirs (`analyses.confidence.bootstrap_ratio`, used here for a median instead
    of a ratio: a bootstrap from 5 seeds; below, the per-seed range and the median of the
    seeds' own medians, which lies inside it)."""
    finite = [np.asarray(v, dtype=np.float64).ravel() for v in per_seed]
    finite = [v[np.isfinite(v)] for v in finite]

    def statistic(seeds: np.ndarray) -> float:
        pooled = np.concatenate([finite[i] for i in seeds])
        return float(np.median(pooled)) if pooled.size else math.nan

    return bootstrap_ratio(len(finite), statistic)


def _groups(runs: Sequence[LoadedRun], axes: Sequence[str]) -> dict[tuple, list[LoadedRun]]:
    groups: dict[tuple, list[LoadedRun]] = {}
    for run in runs:
        key = (run.model, tuple(run.factors.get(a, _NA) for a in axes), run.lr)
        groups.setdefault(key, []).append(run)
    return groups


class _NotApplicable:
    """The level of an axis that does not apply to a group's model (shown as '-')."""

    def __repr__(self) -> str:
        return "-"


_NA = _NotApplicable()


def ablation_rows(runs: Sequence[LoadedRun]) -> list[dict[str, Any]]:
    """One dict per run group, in the runs' order: model, one key per axis (None where the
    axis does not apply to the model), lr, seeds (a tuple), then for every number of the
    table NAME, NAME_low and NAME_high (the median over seeds and its interval over seeds: a
    95% bootstrap interval from 5 seeds, the per-seed range below; NaN with one seed). Landscape metrics a group lacks (no probe, no Hessian) are NaN."""
    runs = [r for r in runs if r.last_step is not None]
    axes = [a.name for a in report_axes(runs)]
    parameter = trajectory_source(runs)
    rows = []
    for (model, levels, lr), group in _groups(runs, axes).items():
        seeds = sorted({r.seed for r in group})
        by_seed = [[r for r in group if r.seed == s] for s in seeds]
        row: dict[str, Any] = {"model": model}
        row.update({a: (None if v is _NA else v) for a, v in zip(axes, levels)})
        row.update(lr=lr, seeds=tuple(seeds))
        for name, value in RUN_VALUES.items():
            _put(row, name, _median_over([[value(r) for r in rs] for rs in by_seed]))
        curves = [_pooled_metrics(rs, parameter) for rs in by_seed]
        for metric in LANDSCAPE_METRICS:
            if all(metric in c for c in curves):
                _put(row, metric, _median_over([c[metric] for c in curves]))
            elif metric.startswith("hessian"):
                continue  # off by default: no column unless measured
            else:
                row.update({metric: math.nan, f"{metric}_low": math.nan,
                            f"{metric}_high": math.nan})
        rows.append(row)
    hessian = [m for m in LANDSCAPE_METRICS if m.startswith("hessian")
               and any(m in row for row in rows)]
    for row in rows:  # every row has the same keys
        for metric in hessian:
            for key in (metric, f"{metric}_low", f"{metric}_high"):
                row.setdefault(key, math.nan)
    return rows


def _put(row: dict, name: str, estimate: RatioEstimate) -> None:
    row[name], row[f"{name}_low"], row[f"{name}_high"] = \
        estimate.ratio, estimate.low, estimate.high


def _pooled_metrics(runs: Sequence[LoadedRun], parameter: str | None) -> dict[str, np.ndarray]:
    """metric -> every value of the seed's runs (the comparison table's own curves)."""
    out = {}
    for metric, curves in _metric_curves(runs, parameter).items():
        if metric in LANDSCAPE_METRICS and curves:
            out[metric] = np.concatenate([np.asarray(v, dtype=np.float64) for _, v in curves])
    return out


def ablation_array(rows: Sequence[dict[str, Any]]) -> np.ndarray:
    """The rows as a numpy structured array: numbers as float64 (NaN where an axis does not
    apply or a value is missing), other values as text ('' where an axis does not apply),
    seeds as text ('0,1,2')."""
    if not rows:
        return np.zeros(0, dtype=[("model", "U1")])
    columns = list(rows[0])
    dtype, data = [], {}
    for name in columns:
        values = [row[name] for row in rows]
        if name == "seeds":
            values = [",".join(map(str, v)) for v in values]
        if all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))
               for v in values):
            data[name] = [math.nan if v is None else float(v) for v in values]
            dtype.append((name, "f8"))
        else:
            text = ["" if v is None else v if isinstance(v, str) else format_value(v)
                    for v in values]
            data[name] = text
            dtype.append((name, f"U{max(1, max(map(len, text)))}"))
    out = np.zeros(len(rows), dtype=dtype)
    for name in columns:
        out[name] = data[name]
    return out


def ablation_frame(rows: Sequence[dict[str, Any]]):
    """The rows as a pandas DataFrame (None where an axis does not apply)."""
    try:
        import pandas
    except ImportError:
        raise ConfigError("pandas is not installed; use ablation_rows (a list of dicts) or "
                          "ablation_array (a numpy structured array), or pip install pandas") \
            from None
    return pandas.DataFrame(list(rows))


# Wall-clock time is the machine's, not a result: its own table (`timing_cells`), apart from
# the scientific columns.
TIMINGS = ("seconds",)


def ablation_cells(rows: Sequence[dict[str, Any]], *, numbers: Sequence[str] | None = None
                   ) -> tuple[list[str], list[list[str]], list[str]]:
    """The table's column heads, its rows as text cells (each number 'median [low, high]', the
    interval over seeds; accuracies in %; '-' where an axis does not apply to the model), and
    the row key behind each column ('' for the seeds count): the text table and the HTML
    report show the same cells. `numbers`: the number columns (default: every result, the
    wall-clock time left to `timing_cells`)."""
    keys = list(rows[0])
    axes = keys[1:keys.index("lr")]  # model, the axes, lr, seeds, the numbers
    if numbers is None:
        numbers = [k for k in keys if (k in RUN_VALUES or k in LANDSCAPE_METRICS)
                   and k not in TIMINGS]
    head = ["model", *axes, "lr", "seeds", *(_HEADS.get(n, n) for n in numbers)]
    lines = []
    for row in rows:
        cells = [row["model"], *("-" if row[a] is None else format_value(row[a]) for a in axes),
                 f"{row['lr']:g}", str(len(row["seeds"]))]
        cells += [_cell(row, n) for n in numbers]
        lines.append(cells)
    return head, lines, ["model", *axes, "lr", "", *numbers]


def timing_cells(rows: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[str]],
                                                            list[str]]:
    """`ablation_cells` of the wall-clock time alone: seconds per run, median over seeds."""
    return ablation_cells(rows, numbers=TIMINGS)


def ablation_text(rows: Sequence[dict[str, Any]], *, timings: bool = False) -> str:
    """The table as text, one line per group (`ablation_cells`; `timings`: `timing_cells`)."""
    if not rows:
        return "(no run with a recorded step)"
    head, cells, _ = (timing_cells if timings else ablation_cells)(rows)
    lines = [head, *cells]
    widths = [max(len(line[c]) for line in lines) for c in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip()
                     for line in lines)


def _cell(row: dict, name: str) -> str:
    value, low, high = row[name], row[f"{name}_low"], row[f"{name}_high"]
    if not math.isfinite(value):
        return "-"
    scale, fmt = (100.0, ".1f") if name.endswith("_acc") else (1.0, ".3g")
    text = format(value * scale, fmt)
    if math.isfinite(low) and math.isfinite(high):
        text += f" [{format(low * scale, fmt)}, {format(high * scale, fmt)}]"
    return text


__all__ = ["RUN_VALUES", "LANDSCAPE_METRICS", "TIMINGS", "ablation_rows", "ablation_array",
           "ablation_frame", "ablation_cells", "timing_cells", "ablation_text"]
