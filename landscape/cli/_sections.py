"""Help with headings: a click Command whose `--help` lists its options under sections.

`landscape record` has about a hundred options; one flat list of 230 lines hides what belongs
together. click has no option groups of its own (click-option-group would add a dependency for
the help text alone), so this small Command subclass formats the same help records under the
headings of a mapping. An option that the mapping does not name is never dropped: it is listed
under "Other options", so that a flag added elsewhere shows up before anyone files it.
"""

from __future__ import annotations

from typing import Sequence

import click

OTHER = "Other options"


def sectioned(sections: Sequence[tuple[str, Sequence[str]]]) -> type[click.Command]:
    """A click.Command class whose help lists options by `sections`: (heading, parameter
    names as click passes them, e.g. "batch_size") in order, then every other option under
    "Other options"."""
    headings = [heading for heading, _ in sections]
    if len(set(headings)) != len(headings) or OTHER in headings:
        raise ValueError(f"section headings must be unique and not {OTHER!r}: {headings}")
    owner, order = {}, {}
    for heading, names in sections:
        order.update((name, len(order) + i) for i, name in enumerate(names))
        for name in names:
            if name in owner:
                raise ValueError(f"option {name!r} is in both {owner[name]!r} and {heading!r}")
            owner[name] = heading

    class SectionedCommand(click.Command):
        def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
            rows: dict[str, list] = {h: [] for h in [*headings, OTHER]}
            for index, param in enumerate(self.get_params(ctx)):
                record = param.get_help_record(ctx)
                if record is not None:  # hidden options and arguments have none
                    # in the mapping's order; others in the order they were declared
                    rows[owner.get(param.name, OTHER)].append(
                        (order.get(param.name, len(order) + index), record))
            for heading, records in rows.items():
                if records:
                    with formatter.section(heading):
                        formatter.write_dl([record for _, record in sorted(records)])

    return SectionedCommand
