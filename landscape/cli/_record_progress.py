"""What `landscape record` shows of a local sweep: a tqdm bar per run (step, loss, images per
second, the probe running), and the table of results at the end."""

from __future__ import annotations

import contextlib
import math
import time
from pathlib import Path

import click
from tqdm import tqdm

from landscape.cli.common import duration, echo_table
from landscape.config.axes import levels_text
from landscape.store import RunStatus, StopReason
from landscape.sweep import RunPlan


class _Bar:
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
        yield _Bar(bar)


def report_results(results, out: Path) -> None:
    """The table of the runs' results; after a stop, how to continue (exit code 130)."""
    rows = [[r.plan.run_id, r.outcome.status + (" (early stop)" if r.outcome.stop_reason
                                                == StopReason.EARLY_STOP else ""),
             str(r.outcome.steps_done),
             f"{r.outcome.final_loss:.4g}", f"{r.outcome.images_per_second:,.0f}",
             duration(r.outcome.seconds)]
            for r in results]
    if rows:
        echo_table(rows, ["run", "status", "steps", "last loss", "samples/s", "time"])
    if any(r.outcome.status == RunStatus.INTERRUPTED for r in results):
        click.echo(f"Stopped: {out} is valid and the run in progress is checkpointed. "
                   f"Continue with: landscape record --resume {out}")
        ctx = click.get_current_context()
        ctx.exit(130)
    click.echo(f"Wrote {out}. Inspect it with: landscape info {out}")
