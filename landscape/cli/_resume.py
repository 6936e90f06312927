"""`landscape record --resume RECORD.h5`: continue a record's unfinished runs with its own
options (options given with it must agree with the record's: `check_resume_compatible`)."""

from __future__ import annotations

from pathlib import Path

import click
from click.core import ParameterSource

from landscape.cli._executor import executor_for
from landscape.cli._record_config import build_config
from landscape.cli._record_progress import report_results, run_progress
from landscape.cli.common import graceful_stop
from landscape.config import record_config
from landscape.store import open_record
from landscape.sweep import check_resume_compatible, resolve_device, resume as resume_sweep


def resume_record(ctx: click.Context, path: Path, preset: str | None, options: dict,
                  ray_options=None) -> None:
    """Resume the record at `path`; `options` given on the command line (besides --device,
    which moves the runs) are checked against the record's (`ray_options`: None for the local
    executor)."""
    given = sorted(name for name in options
                   if ctx.get_parameter_source(name) is not ParameterSource.DEFAULT
                   and name != "device")
    asked = None
    if preset is not None or given:
        recorded = record_config(open_record(path))
        asked = build_config(ctx, preset, options, base=recorded)
        check_resume_compatible(path, recorded, asked=asked)
    device = None
    if ctx.get_parameter_source("device") is not ParameterSource.DEFAULT:
        device = str(resolve_device(options["device"]))
    click.echo(f"Resuming {path}", err=True)
    unfinished = sum(1 for r in open_record(path).runs.values() if not r.finished)
    with graceful_stop() as should_stop:
        try:
            with executor_for(ray_options, run_progress, unfinished, None) as executor:
                results = resume_sweep(path, executor=executor, device=device,
                                       should_stop=should_stop)
        except KeyboardInterrupt:
            raise click.ClickException(
                f"stopped at once; continue with: landscape record --resume {path}") from None
    report_results(results, path)
