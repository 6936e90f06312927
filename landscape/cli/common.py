"""What every command shares: turning library errors into one line and an exit code."""

from __future__ import annotations

import functools
from typing import Callable

import click

from landscape.errors import LandscapeError


def user_errors(command: Callable) -> Callable:
    """Report LandscapeError as `Error: <message>` with exit code 1, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except LandscapeError as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper


def echo_table(rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo("  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip())
