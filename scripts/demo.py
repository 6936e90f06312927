"""The main job of `make demo`: the paper's setting and the course's sweep on the embedded
CIFAR-10 subset, each recorded, plotted and reported; at the end, the verdicts at a glance, the
files written and how long it all took on this machine.

Usage (from the repository root; `make demo` runs it with the .venv's Python):
    .venv/bin/python scripts/demo.py [--out runs/demo]

Every step is a `landscape` command, printed before it runs, so that each can be run again by
hand. `scripts/readme_numbers.py` runs the same commands and puts the end of this script's
output into the README.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

PRESETS = ("demo-paper", "demo-course")


def records(out: str) -> list[Path]:
    """The records the demo writes for `--out OUT`: OUT-paper.h5, OUT-course.h5."""
    return [Path(f"{out}-{preset.removeprefix('demo-')}.h5") for preset in PRESETS]


def demo_commands(out: str, record_options: Sequence[str] = ()) -> list[list[str]]:
    """The `landscape` commands (arguments after `landscape`) of the demo, in order: each
    preset recorded on the CPU and plotted, then each record's HTML report.
    `record_options`: added to every `landscape record` (a test's fast settings)."""
    commands = []
    for preset, record in zip(PRESETS, records(out)):
        commands.append(["record", "--preset", preset, "--device", "cpu", "-o", str(record),
                         "--overwrite", *record_options])
        commands.append(["plot", str(record), "--out", str(record.with_suffix("")) + "-figures"])
    for record in records(out):
        commands.append(["report", str(record), "-o", str(record.with_suffix(".html"))])
    return commands


def run(commands: Sequence[Sequence[str]]) -> float:
    """Run each command with this Python's `landscape` (the .venv's, under `make demo`),
    printing it first; stops at the first that fails (its exit code). Returns the seconds."""
    start = time.monotonic()
    for command in commands:
        print(f"$ landscape {shlex.join(command)}", flush=True)
        done = subprocess.run([sys.executable, "-m", "landscape", *command])
        if done.returncode != 0:
            sys.exit(done.returncode)
    return time.monotonic() - start


def duration(seconds: float) -> str:
    """'10 min 38 s', '42 s'."""
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"


def time_line(seconds: float, load: float) -> str:
    """The one run-time figure the demo gives, measured by itself: what it covers, the
    machine and its load."""
    return (f"make demo took {duration(seconds)} (both presets, their figures and reports, after "
            f"the install) on {os.cpu_count()} CPU cores, load average {load:.1f} at the start.")


def ending(out: str, seconds: float, load: float) -> str:
    """The end of the demo's output: the verdicts at a glance (each record's summary.txt has
    them in full), then how long it took. The README's demo block is this text."""
    from landscape.report import load_runs, verdict_digest

    digests = [verdict_digest(load_runs([record])) for record in records(out)]
    return "\n\n".join([*(d for d in digests if d), time_line(seconds, load)])


def files_text(out: str) -> str:
    """Where everything is, with the records' sizes."""
    lines = ["Written:"]
    for record in records(out):
        figures = str(record.with_suffix("")) + "-figures"
        lines.append(f"  {record} ({record.stat().st_size / 1e6:.1f} MB; `landscape info "
                     f"{record}` says where the bytes go), {figures}/ (every figure and "
                     f"summary.txt), {record.with_suffix('.html')} (the report)")
    lines.append(f"The command is .venv/bin/landscape (or `source .venv/bin/activate`), e.g. "
                 f".venv/bin/landscape info {records(out)[0]}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/demo",
                        help="prefix of the files written (default: runs/demo)")
    args = parser.parse_args(argv)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()[0]
    seconds = run(demo_commands(args.out))
    print()
    print(files_text(args.out))
    print()
    print(ending(args.out, seconds, load))


if __name__ == "__main__":
    main()
