"""What every command shares: turning library errors into one line and an exit code."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
import threading
from typing import Callable, Iterator

import click

from landscape.cli._flags import flag_message
from landscape.errors import ConfigError, LandscapeError, RecordWriteError


def user_errors(command: Callable) -> Callable:
    """Report LandscapeError as `Error: <message>` with exit code 1, never a traceback; a
    ConfigError names the flags of the fields it is about."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except RecordWriteError as exc:
            # HDF5 cannot release a file whose write failed and may crash the interpreter on
            # its way out; say what happened and leave at once (the file is valid up to the
            # last flush).
            click.echo(f"Error: {exc}", err=True)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(1)
        except ConfigError as exc:
            raise click.ClickException(flag_message(exc)) from None
        except LandscapeError as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper


def echo_table(rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo("  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip())


@contextlib.contextmanager
def graceful_stop() -> Iterator[Callable[[], bool]]:
    """Ctrl-C or SIGTERM asks the training loop to stop after its current step (it then records
    and checkpoints it); a second Ctrl-C stops at once. Yields the `should_stop` callable."""
    requested = threading.Event()

    def ask_to_stop(signum, frame):
        if requested.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        requested.set()
        click.echo(f"\n{signal.Signals(signum).name}: stopping after the current step "
                   f"(Ctrl-C again to stop at once)", err=True)

    if threading.current_thread() is not threading.main_thread():
        yield requested.is_set  # signals can only be handled in the main thread
        return
    saved = {s: signal.signal(s, ask_to_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield requested.is_set
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)


def duration(seconds: float) -> str:
    """A run's wall time, e.g. 42.1s, 12m05s, 3h07m ("-" when not recorded)."""
    if not seconds == seconds:  # NaN
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    return f"{minutes // 60}h{minutes % 60:02d}m"
