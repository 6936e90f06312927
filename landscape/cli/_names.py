"""Option values renamed for clarity (issue 23), and the one line an old name prints.

`final` meant two things: `--tap final` the last linear layer's weight, `--save-weights-at
final` the weights after the last step (and `surface --step final` the last kept weights).
Each now has its own word; the old one keeps working, with a line on stderr, because scripts
use it.
"""

from __future__ import annotations

from typing import Iterable

import click

from landscape.config import FINAL_TAP

LAST_LINEAR = "last-linear"  # --tap: the weight of the model's last linear layer
END = "end"  # --save-weights-at: after the last step of a finished run
LAST_KEPT = "last"  # surface --step: the last weights the run kept
OLD_FINAL = "final"


def deprecated(old: str, new: str) -> None:
    """The one line a deprecated name prints (stderr)."""
    click.echo(f"Deprecated: {old} is now {new}; the old name still works for now.", err=True)


def taps_from_cli(taps: Iterable[str]) -> tuple[str, ...]:
    """--tap values as the config spells them: last-linear (and the old 'final') is FINAL_TAP."""
    out = []
    for tap in taps:
        if tap == OLD_FINAL:
            deprecated("--tap final", f"--tap {LAST_LINEAR}")
        out.append(FINAL_TAP if tap in (LAST_LINEAR, OLD_FINAL) else tap)
    return tuple(out)


def taps_to_cli(taps: Iterable[str]) -> tuple[str, ...]:
    """Config taps as --tap spells them (for the option's default)."""
    return tuple(LAST_LINEAR if t == FINAL_TAP else t for t in taps)


def is_end(text: str) -> bool:
    """--save-weights-at: 'end' (or the old 'final')."""
    if text == OLD_FINAL:
        deprecated("--save-weights-at final", f"--save-weights-at {END}")
    return text in (END, OLD_FINAL)


def is_last_kept(text: str) -> bool:
    """surface --step: 'last' (or the old 'final')."""
    if text == OLD_FINAL:
        deprecated("--step final", f"--step {LAST_KEPT}")
    return text in (LAST_KEPT, OLD_FINAL)


def warn_if_given(old: str, new: str):
    """A click callback for a deprecated option: its one line when the command line used it
    (click's own `deprecated=` names the parameter, not the flag a script typed)."""
    from click.core import ParameterSource

    def callback(ctx: click.Context, param: click.Parameter, value):
        if ctx.get_parameter_source(param.name) not in (ParameterSource.DEFAULT, None):
            deprecated(old, new)
        return value

    return callback
