"""What every figure of `landscape.plot` shares: colors and line styles, the Axes to draw into,
y scales and log ticks, end marks of diverged and incomplete runs, shaded bands, legends.

A diverged run is marked with an "x" at the step whose loss was non-finite (at the top of the
panel), an incomplete run with an open circle at its last recorded step.
"""

from __future__ import annotations

import functools
from typing import Callable, Literal, Mapping, Sequence, TypeVar

import matplotlib
import matplotlib.colors as mcolors
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.text import Text
from matplotlib.ticker import FuncFormatter

from landscape.models import MODELS, known_norm, norm_label
from landscape.report import RunCurve

YScale = Literal["linear", "log", "auto"]

# "auto" y scale: log when the finite positive values span more than this factor.
AUTO_LOG_RANGE = 100.0
_LINESTYLES = ("-", "--", ":", "-.")
_MARKERS = ("o", "s", "^", "D", "v", "P")
_DIVERGED = dict(marker="x", markersize=10, markeredgewidth=2.2, linestyle="none")
_INCOMPLETE = dict(marker="o", markersize=8, markerfacecolor="none", markeredgewidth=1.8,
                   linestyle="none")


def model_colors(models: Sequence[str]) -> dict[str, str]:
    """One color per model, in the order given (matplotlib's tab10 cycle)."""
    palette = matplotlib.colormaps["tab10"].colors
    return {m: mcolors.to_hex(palette[i % len(palette)]) for i, m in enumerate(models)}


def _figure_and_axes(ax: Axes | Sequence[Axes] | np.ndarray | None, n: int,
                     figsize: tuple[float, float]) -> tuple[Figure, list[Axes]]:
    if ax is None:
        fig = Figure(figsize=figsize, layout="constrained")
        axes = fig.subplots(1, n, squeeze=False)[0]
        return fig, list(axes)
    axes = [ax] if isinstance(ax, Axes) else list(np.ravel(np.asarray(ax, dtype=object)))
    if len(axes) != n or not all(isinstance(a, Axes) for a in axes):
        raise ValueError(f"this figure needs {n} Axes, got {len(axes)}")
    return axes[0].figure, axes


def _finite(values: np.ndarray) -> np.ndarray:
    """float64 copy with non-finite entries as NaN (drawn as gaps, never as huge polygons)."""
    out = np.asarray(values, dtype=np.float64).copy()
    out[~np.isfinite(out)] = np.nan
    return out


def _set_yscale(ax: Axes, values: Sequence[np.ndarray], yscale: YScale) -> str:
    """Apply `yscale` ("auto": log if the positive finite values span > AUTO_LOG_RANGE)."""
    if yscale not in ("linear", "log", "auto"):
        raise ValueError(f"unknown yscale {yscale!r}; valid: linear, log, auto")
    if yscale == "auto":
        flat = np.concatenate([np.ravel(v) for v in values]) if values else np.array([])
        flat = flat[np.isfinite(flat) & (flat > 0)]
        yscale = "log" if flat.size and flat.max() / flat.min() > AUTO_LOG_RANGE else "linear"
    ax.set_yscale(yscale)
    return yscale


def _ylabel(ax: Axes, text: str, scale: str, *, math: bool = False) -> None:
    """The y label; `math`: `text` is a label of ours written in mathtext (see literal_text)."""
    label = ax.set_ylabel(text + (" (log scale)" if scale == "log" else ""))
    if math:  # (the label may have been made literal while empty, by a panel drawn before)
        label.set_gid(MATH_GID)
        label.set_parse_math(True)


# The gid of a text of ours written in mathtext ($\beta$); every other text is literal.
MATH_GID = "landscape-math"
Drawn = TypeVar("Drawn", bound=Callable)


def literal_text(draw: Drawn) -> Drawn:
    """Decorate a function that returns a Figure (or a dict of them): every text in it is
    literal, so that a `$` in a run id, a level, a layer or a file name is a dollar sign and
    never mathtext (which fails to parse `$x` pairs, or draws something else). Tick labels
    (matplotlib's own, such as a log axis's powers of ten) and our own labels marked with
    MATH_GID keep mathtext."""
    @functools.wraps(draw)
    def wrapper(*args, **kwargs):
        drawn = draw(*args, **kwargs)
        for figure in (drawn.values() if isinstance(drawn, Mapping) else [drawn]):
            if isinstance(figure, Figure):
                _make_literal(figure)
        return drawn

    return wrapper  # type: ignore[return-value]


def _make_literal(figure: Figure) -> None:
    texts = figure.findobj(Text)  # first: finding them makes the axes' ticks
    own = set()  # matplotlib's texts: tick labels and the axes' offset texts ("1e-3")
    for ax in figure.get_axes():
        for axis in (ax.xaxis, ax.yaxis, getattr(ax, "zaxis", None)):
            if axis is None:
                continue
            own.add(id(axis.offsetText))
            for tick in (*axis.majorTicks, *axis.minorTicks):
                own.update((id(tick.label1), id(tick.label2)))
    for text in texts:
        if id(text) not in own and text.get_gid() != MATH_GID:
            text.set_parse_math(False)


# Legend words for the normalizations of the model table (landscape.models.NORMS).
_NORM_WORDS = {
    "noisy_bn": "noisy BatchNorm",
    "bn": "BatchNorm",
    "l1": "ℓ1 normalization",
    "l2": "ℓ2 normalization",
    "linf": "ℓ∞ normalization",
    "noise": "noise only, no BatchNorm",
}


def model_name(model: str, models: Sequence[str] = ()) -> str:
    """The model's name for legends: 'vgg_bn (BatchNorm)', 'vgg_noisy_bn (noisy BatchNorm)',
    'vgg_l1 (ℓ1 normalization)', and 'vgg (no BatchNorm)' when a normalized variant of it is
    among `models`. A name the model table does not know is named by the others of `models`:
    'net_gn (GroupNorm)' beside 'net', and 'net (no normalization)' beside 'net_gn' (the
    names runs are reported under: `models.variant_name`); alone, it is shown as it is."""
    if model not in MODELS:
        return _outside_name(model, models)
    norm = MODELS[model].norm
    if norm is not None:
        return f"{model} ({_NORM_WORDS.get(norm, norm_label(norm))})"
    family = MODELS[model].family
    if any(m in MODELS and MODELS[m].family == family and MODELS[m].norm is not None
           for m in models):
        return f"{model} (no BatchNorm)"
    return model


def _outside_name(model: str, models: Sequence[str]) -> str:
    """`model_name` of a name outside the model table, from its relation to the others."""
    for other in models:
        kind = model[len(other) + 1:] if model.startswith(other + "_") else ""
        if kind and known_norm(kind):
            return f"{model} ({_NORM_WORDS.get(kind, norm_label(kind))})"
    if any(m.startswith(model + "_") and known_norm(m[len(model) + 1:]) for m in models):
        return f"{model} ({norm_label('none')})"
    return model


def _mark_end(ax: Axes, x: float, y: float, color: str, diverged: bool) -> None:
    if diverged or not np.isfinite(y):
        # At the top of the panel: a diverged run has no value at its divergence step, and its
        # last finite one is often far off the scale of the other runs.
        ax.plot([x], [0.96], color=color, zorder=5, transform=ax.get_xaxis_transform(),
                clip_on=False, **(_DIVERGED if diverged else _INCOMPLETE))
    else:
        ax.plot([x], [y], color=color, zorder=5, **_INCOMPLETE)


def _mark_curve_ends(ax: Axes, curves: Sequence[RunCurve], color: str) -> tuple[bool, bool]:
    """Mark every diverged / incomplete run of `curves`; returns (any diverged, any incomplete)."""
    div = inc = False
    for curve in curves:
        point = curve.end_point()
        if point is None:
            continue
        diverged = curve.diverged_step is not None
        _mark_end(ax, point[0], point[1], color, diverged)
        div, inc = div or diverged, inc or not diverged
    return div, inc


def _end_handles(diverged: bool, incomplete: bool) -> list[Line2D]:
    handles = []
    if diverged:
        handles.append(Line2D([], [], color="0.2",
                              label="diverged: first non-finite loss at this step",
                              **_DIVERGED))
    if incomplete:
        handles.append(Line2D([], [], color="0.2", label="incomplete run: last recorded step",
                              **_INCOMPLETE))
    return handles


_MAX_MARKED_POINTS = 80  # beyond this, markers pile up into a solid smear


def _marker_for(n_points: int, wanted: bool, marker: str = "o") -> str | None:
    """Mark points when asked (and when there are few enough to see), or when a curve is too
    short to show as a line."""
    if n_points < 3 or (wanted and n_points <= _MAX_MARKED_POINTS):
        return marker
    return None


def _shaded(ax: Axes, step: np.ndarray, low: np.ndarray, high: np.ndarray, color: str,
            *, markers: bool = False) -> None:
    """Shade between low and high and draw both edges; a point with no finite neighbour (which
    a shaded polygon cannot show) gets a vertical bar from low to high."""
    low, high = _finite(low), _finite(high)
    ax.fill_between(step, low, high, color=color, alpha=0.25, linewidth=0)
    style = dict(color=color, linewidth=1.0, marker=_marker_for(len(step), markers),
                 markersize=3)
    ax.plot(step, low, **style)
    ax.plot(step, high, **style)
    ok = np.isfinite(low) & np.isfinite(high)
    neighbour = np.zeros_like(ok)
    neighbour[1:] |= ok[:-1]
    neighbour[:-1] |= ok[1:]
    isolated = ok & ~neighbour
    if isolated.any():
        ax.vlines(np.asarray(step)[isolated], low[isolated], high[isolated], color=color,
                  linewidth=4, alpha=0.4)


def _has_finite(values: Sequence[np.ndarray]) -> bool:
    return any(np.isfinite(np.asarray(v, dtype=np.float64)).any() for v in values)


def _readable_log_ticks(ax: Axes) -> None:
    """On a log axis spanning less than ~2 decades, label ticks as plain numbers (2.2, 2.4)
    rather than 2.2×10⁰; wider axes keep matplotlib's powers of ten."""
    if ax.get_yscale() != "log":
        return
    low, high = ax.get_ylim()
    if low > 0 and high / low < 100:
        fmt = FuncFormatter(lambda v, _: f"{v:.3g}")
        ax.yaxis.set_major_formatter(fmt)
        if high / low < 10:
            ax.yaxis.set_minor_formatter(fmt)
        else:
            # Over one to two decades a label at every minor tick (0.2, 0.3, ..., 0.9) would
            # overlap: label 2 and 5 times the powers of ten only.
            ax.yaxis.set_minor_formatter(FuncFormatter(
                lambda v, _: f"{v:.3g}" if _mantissa(v) in (2, 5) else ""))


def _mantissa(value: float) -> int:
    """The leading digit of a positive number (2 for 0.2, 20, 2e-5)."""
    return int(round(value / 10 ** np.floor(np.log10(value) + 1e-9)))


def _legend(fig: Figure, ax: Axes, handles: list, *, own_figure: bool) -> None:
    """Below the panels when this module made the figure (nothing to hide), else in `ax`."""
    if own_figure:
        # As many columns (at most 4) as the figure's width holds: ~5 pt per character at
        # font size 9, plus the handle and padding.
        longest = max((len(h.get_label()) for h in handles), default=1)
        fit = int(fig.get_figwidth() * 72 // (5.0 * longest + 40))
        fig.legend(handles=handles, loc="outside lower center",
                   ncol=max(1, min(4, len(handles), fit)), fontsize=9)
    else:
        ax.legend(handles=handles, loc="best", fontsize=8)


def _empty(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="0.4",
            wrap=True)


def _colors_for(models: Sequence[str], colors: Mapping[str, str] | None) -> Mapping[str, str]:
    if colors is None:
        return model_colors(models)
    missing = [m for m in models if m not in colors]
    if missing:
        raise ValueError(f"no color given for model(s) {', '.join(missing)}")
    return colors


def _run_style(index: int, n: int, color: str) -> dict:
    """Same hue per model; lightness and line style tell the learning rates apart."""
    rgb = np.asarray(mcolors.to_rgb(color))
    # A model's only run keeps the model's color (as in the other figures); with several,
    # darker for the smallest lr, lighter for the largest.
    mix = 0.0 if n == 1 else -0.35 + 0.7 * index / (n - 1)
    rgb = rgb * (1 + mix) if mix < 0 else rgb + (1 - rgb) * mix
    return dict(color=mcolors.to_hex(np.clip(rgb, 0, 1)),
                linestyle=_LINESTYLES[index % len(_LINESTYLES)])


def _figure_and_grid(axes: Sequence[Axes] | np.ndarray | None, rows: int, cols: int,
                     figsize: tuple[float, float]) -> tuple[Figure, list[list[Axes]]]:
    """A rows × cols grid of Axes: new, or `axes` given as a [rows, cols] array or a flat
    sequence in row-major order."""
    if axes is None:
        fig = Figure(figsize=figsize, layout="constrained")
        grid = fig.subplots(rows, cols, squeeze=False)
        return fig, [list(row) for row in grid]
    flat = list(np.ravel(np.asarray(axes, dtype=object)))
    if len(flat) != rows * cols or not all(isinstance(a, Axes) for a in flat):
        raise ValueError(f"this figure needs {rows} x {cols} = {rows * cols} Axes, "
                         f"got {len(flat)}")
    return flat[0].figure, [flat[r * cols:(r + 1) * cols] for r in range(rows)]


def _spacing_text(steps: Sequence[np.ndarray], what: str) -> str:
    """' (probed every 5 steps)', ' (probed every step)', or ' (probed steps)' if irregular."""
    gaps = {int(g) for s in steps for g in np.diff(s)}
    if len(gaps) != 1:
        return f" ({what} steps)"
    gap = gaps.pop()
    return f" ({what} every step)" if gap == 1 else f" ({what} every {gap} steps)"
