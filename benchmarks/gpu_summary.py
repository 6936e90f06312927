"""One table from the logs of benchmarks/gpu.sh: per step its exit status, wall time and the
lines that carry its result (targets with PASS/MISS, projections, the no-sync test).

    python benchmarks/gpu_summary.py gpu-logs [--device cuda]

Each step's log starts with "== NAME ..." and ends with "== exit RC after Ns" (gpu.sh writes
both); a step without its end line was cut short. Only lines the benchmarks print are read,
so a changed print in a benchmark shows here as "no result line".
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

# Per step: the patterns of its result lines (the whole matching line is shown, trimmed).
RESULT_LINES = {
    "record_fp32": [r"^model\s+(\S+),", r"^record / plain\s", r"^taps cost over record",
                    r"^probe overhead / \(K fwd\+bwd\)"],
    "record_bf16": [r"^model\s+(\S+),", r"^record / plain\s", r"^probe overhead"],
    "sweep_course": [r"^measured\s", r"^\s*projected\s", r"^limit\s"],
    "curvature_training": [r"^(vgg\S*) \(", r"ours / PyHessian time", r"agree within",
                           r"warm starts used"],
    "surfaces": [r"^time ratio ours", r"^values: "],
    "no_sync": [r"\d+ (passed|failed|skipped|deselected)", r"^(FAILED|ERROR) "],
}
END = re.compile(r"^== exit (\d+) after (\d+)s")
MISSING_PEER = re.compile(r"(No module named '(pyhessian|loss_landscapes)'|the peer is not "
                          r"installed)")


def summarize(log: Path) -> tuple[str, str, list[str]]:
    """(status, seconds, result lines) of one step's log."""
    lines = log.read_text(errors="replace").splitlines()
    status, seconds = "cut short", "?"
    for line in lines:
        end = END.match(line)
        if end:
            rc = int(end.group(1))
            status = {0: "ok", 124: "timed out", 130: "timed out"}.get(rc, f"exit {rc}")
            seconds = end.group(2)
    patterns = [re.compile(p) for p in RESULT_LINES.get(log.stem, [])]
    results = [" ".join(line.split()) for line in lines
               if any(p.search(line) for p in patterns)]
    if any(MISSING_PEER.search(line) for line in lines):
        results.append("peer not installed (set PEER_WHEELS): no comparison")
    if status not in ("ok",) and not results:
        tail = [line for line in lines if line.strip() and not line.startswith("==")]
        results = [" ".join(tail[-1].split())] if tail else []
    return status, seconds, results or ["no result line"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("logs", type=Path)
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    order = list(RESULT_LINES)
    logs = sorted(args.logs.glob("*.log"),
                  key=lambda p: order.index(p.stem) if p.stem in order else len(order))
    if not logs:
        raise SystemExit(f"no step logs in {args.logs}")
    print(f"Summary of benchmarks/gpu.sh on {args.device} (logs: {args.logs})")
    print(f"{'step':<20} {'status':<10} {'s':>5}  result")
    for log in logs:
        status, seconds, results = summarize(log)
        print(f"{log.stem:<20} {status:<10} {seconds:>5}  {results[0][:110]}")
        for line in results[1:]:
            print(f"{'':<38}{line[:110]}")


if __name__ == "__main__":
    main()
