"""The progress `landscape.record` and `landscape.resume` show of a local sweep by default, and
`landscape record` shows on the command line: a tqdm bar per run (step, loss, samples per
second, the probe running), written to stderr."""

from __future__ import annotations

import contextlib
import math
import time

from tqdm import tqdm

from landscape.config.axes import levels_text
from landscape.sweep.plans import RunPlan


class RunBar:
    """A tqdm progress bar per run: step, loss and images per second."""

    def __init__(self, bar: tqdm) -> None:
        self._bar = bar
        self._postfix = ""
        self._seconds: dict[str, float] = {}  # how long each probe took last time
        self._running: tuple[str, float] | None = None

    def advance(self, steps: int, *, loss: float, images_per_second: float) -> None:
        self._postfix = f"loss {loss:.4g}, {images_per_second:,.0f} samples/s"
        self._bar.set_postfix_str(self._postfix, refresh=False)
        self._bar.update(steps)

    def probing(self, name: str | None, step: int) -> None:
        """Which probe is running, so that a slow one (the Hessian's) does not look like a
        hang. The bar is redrawn only around probes that took a while last time (and the
        first time), so that a probe at every fast step costs no terminal writes."""
        now = time.perf_counter()
        if name is not None:
            self._running = (name, now)
            slow = self._seconds.get(name, math.inf) >= _SLOW_PROBE_SECONDS
            text = f"{self._postfix + ', ' if self._postfix else ''}running {name} (step {step})"
            self._bar.set_postfix_str(text, refresh=slow)
            return
        if self._running is not None:
            running, start = self._running
            self._seconds[running] = now - start
            self._running = None
            self._bar.set_postfix_str(self._postfix,
                                      refresh=now - start >= _SLOW_PROBE_SECONDS)


_SLOW_PROBE_SECONDS = 0.5


@contextlib.contextmanager
def run_progress(plan: RunPlan, n_runs: int, total: int):
    """The bar of run `plan` (one of `n_runs`, `total` steps), as `LocalExecutor` asks for it."""
    desc = f"[{plan.index + 1}/{n_runs}] {plan.model} lr={plan.lr:g} seed={plan.seed}" + \
        (f" {levels_text(plan.factors)}" if plan.levels else "")
    with tqdm(total=total, desc=desc, unit="step", dynamic_ncols=True, leave=True) as bar:
        yield RunBar(bar)


__all__ = ["RunBar", "run_progress"]
