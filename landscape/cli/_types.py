"""Click types shared by the commands."""

from __future__ import annotations

from typing import Callable

import click

_EXAMPLES = {float: "1e-3,2e-3", int: "100,150"}
_KINDS = {float: "a number", int: "a whole number"}


class CommaList(click.ParamType):
    """'1e-3,2e-3' -> (0.001, 0.002): a comma-separated list of `item` values (str, float or
    int), with one clear error for anything malformed. With `multiple=True` each occurrence is
    one such tuple (see `flatten`). Errors are reported as the command's own (`Error: ...`),
    without click's usage line."""

    name = "text"  # the metavar stays TEXT in --help

    def __init__(self, item: Callable = str, length: int | None = None,
                 length_hint: str = "", *, unique: bool = False) -> None:
        self.item = item
        self.length = length
        self.length_hint = length_hint
        self.unique = unique  # refuse an item listed twice (as --lrs and --seeds do)

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        text = str(value)
        flag = _flag(param)
        items = [item.strip() for item in text.split(",")]
        if self.item is str:
            if any(item == "" for item in items):
                raise click.ClickException(f"empty name in {text!r}")
            values = tuple(items)
        else:
            if not text.strip() or any(item == "" for item in items):
                raise click.ClickException(f"{flag}: empty entry in {text!r}; expected e.g. "
                                           f"{_EXAMPLES[self.item]}")
            values = []
            for item in items:
                try:
                    values.append(self.item(item))
                except ValueError:
                    raise click.ClickException(f"{flag}: {item!r} is not "
                                               f"{_KINDS[self.item]} (in {text!r})") from None
            values = tuple(values)
        if self.length is not None and len(values) != self.length:
            raise click.ClickException(f"{flag} takes {self.length_hint}, got {text!r}")
        if self.unique:
            _refuse_repeats(values, flag)
        return values


def flatten(lists, *, unique: str | None = None) -> tuple:
    """The items of a `multiple=True` CommaList option: ('a,b', 'c') -> ('a', 'b', 'c'). With
    `unique` (the flag), an item given twice, in one list or in two, is refused."""
    items = tuple(item for values in lists for item in values)
    if unique is not None:
        _refuse_repeats(items, unique)
    return items


def _refuse_repeats(values: tuple, flag: str) -> None:
    seen = set()
    for value in values:
        if value in seen:
            shown = f"{value:g}" if isinstance(value, float) else str(value)
            raise click.ClickException(f"{flag} lists {shown} twice")
        seen.add(value)


def _flag(param: click.Parameter | None) -> str:
    if param is None:
        return "value"
    return max(param.opts, key=len)
