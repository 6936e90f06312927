"""What a band, an envelope or a pooled number spans: a model's learning rates, its seeds, or
both. A record of 4 lrs x 3 seeds has 12 runs per model; calling them "12 lrs" (or two seeds
at one lr "2 lrs: 0.05, 0.05") misleads a reader, so every figure and table says it with these
words."""

from __future__ import annotations

from typing import Iterable, Sequence


def _numbers(values: Sequence[float], fmt: str = "g", most: int = 4) -> str:
    """'0.05, 0.1' for a few values, '0.001 to 0.1' for many."""
    if len(values) <= most:
        return ", ".join(f"{v:{fmt}}" for v in values)
    return f"{min(values):{fmt}} to {max(values):{fmt}}"


def span_text(runs: Iterable[tuple[float, int]]) -> str:
    """What the runs (lr, seed) of one model span, e.g. '1 run (lr 0.05, seed 0)',
    '2 seeds (0, 1) at lr 0.05', '4 lrs (0.001, 0.002, 0.005, 0.0001), seed 0',
    '4 lrs x 3 seeds = 12 runs (lrs 0.0001 to 0.005; seeds 0, 1, 2)'."""
    runs = list(runs)
    if not runs:
        return "no run"
    lrs = sorted({lr for lr, _ in runs})
    seeds = sorted({seed for _, seed in runs})
    if len(runs) == 1:
        return f"1 run (lr {lrs[0]:g}, seed {seeds[0]})"
    if len(lrs) == 1:
        return f"{len(seeds)} seeds ({_numbers(seeds, 'd')}) at lr {lrs[0]:g}"
    if len(seeds) == 1:
        return f"{len(lrs)} lrs ({_numbers(lrs)}), seed {seeds[0]}"
    grid = f"{len(lrs)} lrs x {len(seeds)} seeds"
    total = f" = {len(runs)} runs" if len(runs) == len(lrs) * len(seeds) else \
        f", {len(runs)} runs"
    return f"{grid}{total} (lrs {_numbers(lrs)}; seeds {_numbers(seeds, 'd')})"


def spanned(runs: Iterable[tuple[float, int]]) -> str:
    """The dimensions the runs spread over, for a title: 'lrs', 'seeds', 'lrs and seeds' or
    'one run'."""
    runs = list(runs)
    n_lrs = len({lr for lr, _ in runs})
    n_seeds = len({seed for _, seed in runs})
    if n_lrs > 1 and n_seeds > 1:
        return "lrs and seeds"
    if n_lrs > 1:
        return "lrs"
    return "seeds" if n_seeds > 1 else "one run"


def run_name(lr: float, seed: int, *, seeds: Sequence[int]) -> str:
    """A run's part of a legend label: 'lr 0.05', or 'lr 0.05, seed 1' where the record has
    several seeds (so two seeds at one lr do not read as one run twice)."""
    return f"lr {lr:g}" + (f", seed {seed}" if len(set(seeds)) > 1 else "")
