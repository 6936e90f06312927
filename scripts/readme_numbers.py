"""Regenerate the README's demo numbers: run the demo's commands (`scripts/demo.py`, the same
presets and options as `make demo`) and write the end of its output (the verdicts at a glance
and the run time) into README.md between its two markers. Nothing else in the README changes.

Usage (from the repository root, on a quiet machine; about as long as `make demo`):
    .venv/bin/python scripts/readme_numbers.py [--readme README.md] [--out runs/readme/demo]

`--record-options "..."` adds options to every `landscape record` (the test's fast settings);
the README then holds those runs' numbers, so leave it out for the README itself.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))
import demo  # noqa: E402  (scripts/demo.py, beside this file)

BEGIN = "<!-- demo output: begin (scripts/readme_numbers.py writes this block; do not edit) -->"
END = "<!-- demo output: end -->"


def replace_block(readme: str, text: str) -> str:
    """`readme` with the block between BEGIN and END replaced by `text` in a ```text fence.
    Raises ValueError when the markers are missing, repeated or out of order."""
    if readme.count(BEGIN) != 1 or readme.count(END) != 1 or \
            readme.index(BEGIN) > readme.index(END):
        raise ValueError(f"the README needs one line {BEGIN!r} and, after it, one line "
                         f"{END!r} around its demo block")
    head, rest = readme.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n```text\n{text.rstrip()}\n```\n{END}{tail}"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--readme", type=Path, default=Path("README.md"))
    parser.add_argument("--out", default="runs/readme/demo",
                        help="prefix of the demo's files (default: runs/readme/demo)")
    parser.add_argument("--record-options", default="",
                        help="options added to every `landscape record` (tests only)")
    args = parser.parse_args(argv)
    try:
        readme = args.readme.read_text(encoding="utf-8")
        replace_block(readme, "")  # the markers are checked before the demo's minutes
    except (OSError, ValueError) as exc:
        sys.exit(f"Error: {exc}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()[0]
    seconds = demo.run(demo.demo_commands(args.out, shlex.split(args.record_options)))
    text = demo.ending(args.out, seconds, load)
    args.readme.write_text(replace_block(readme, text), encoding="utf-8")
    print(f"Wrote the demo block of {args.readme}:\n{text}")


if __name__ == "__main__":
    main()
