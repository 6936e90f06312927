"""What `landscape record` shows of a local sweep: a tqdm bar per run (`landscape.sweep.progress`,
the bars `landscape.record` shows too), and the table of results at the end."""

from __future__ import annotations

from pathlib import Path

import click

from landscape.cli.common import duration, echo_table
from landscape.store import RunStatus, StopReason
from landscape.sweep.progress import run_progress

__all__ = ["report_results", "run_progress"]


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
