"""`landscape presets`: the named setups and their values."""

from __future__ import annotations

import click

from landscape.config import PRESETS, ProbeConfig


def _show(value) -> str:
    if isinstance(value, ProbeConfig):
        if not value.every:
            return "off"
        if value.direction == "update":
            return (f"every {value.every} steps, along the update, {value.count} multiples of "
                    f"it in [{value.low:g}, {value.high:g}], {value.spacing} spacing")
        unit = "x lr" if value.scale == "relative" else "(absolute)"
        along = {"gradient": "along the gradient, ", "auto": ""}[value.direction]
        return (f"every {value.every} steps, {along}{value.count} step lengths in "
                f"[{value.low:g}, {value.high:g}] {unit}, {value.spacing} spacing")
    if isinstance(value, dict):  # axes: name -> values
        return "; ".join(f"{name} = {_show(tuple(values))}" for name, values in value.items())
    if isinstance(value, tuple):
        return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value) or "-"
    if value is None:
        return "-"
    return f"{value:g}" if isinstance(value, float) else str(value)


@click.command()
def presets() -> None:
    """List the presets of `landscape record --preset NAME` and their values.

    Options given explicitly on the command line override a preset's values; the record
    stores the resolved values.
    """
    for name, values in PRESETS.items():
        click.echo(f"{name}:")
        width = max(len(k) for k in values)
        for key, value in values.items():
            click.echo(f"  {key.ljust(width)}  {_show(value)}")
        click.echo()
