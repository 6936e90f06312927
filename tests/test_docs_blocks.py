"""Every ```python and ```bash block of README.md and docs/*.md runs as written.

A block that truly cannot run here (it needs a GPU, the internet, full CIFAR-10, a Ray
cluster, hours) has the line `<!-- not run: REASON -->` directly before its opening fence; the
test checks that every such marker gives a reason and sits on a block. Output examples are
```text blocks, which are not run.

The blocks of one document run in order, in one empty folder, so that a block may use the
files an earlier block wrote; its Python blocks share one namespace. A bash block is expanded
by bash itself (variables, line continuations, comments) with `landscape` a function that only
notes its arguments and no other program on the PATH: a block that runs anything but
`landscape` must be marked. Each `landscape` command then runs in this process (click's
runner: torch is imported once), with fast settings added (FAST below): a record trains a few
steps of one seed at a small batch, a surface has few points, a figure a low resolution. The
code is otherwise the command as written. A block fails with its file, line and the command's
output.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from landscape.cli import main

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MARKER = re.compile(r"^<!-- not run: (.*?) ?-->$")
FENCE = re.compile(r"^```(\w*)\s*$")

# Added to `landscape record` (not --resume): a few steps of one seed at a small batch (unless
# the batch size is an axis), enough to run every code path the command takes (and `plot
# --smooth 5`). A command that names steps (weights kept, a Hessian density) keeps its own
# --max-steps: the steps must exist.
FAST_STEPS = 5
FAST_RECORD = ["--seeds", "0", "--batch-size", "8"]
FAST = {"surface": ["--points", "5"], "plot": ["--dpi", "30"], "report": ["--dpi", "30"]}


@dataclass(frozen=True)
class Block:
    language: str  # "python" or "bash"
    code: str
    line: int  # of the opening fence, 1-based
    skip: str | None  # the reason of a `not run` marker


def code_blocks(text: str) -> list[Block]:
    """The ```python and ```bash blocks of a Markdown text, with the reason of the `not run`
    marker directly before each (None without one)."""
    blocks, lines = [], text.splitlines()
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        marker = MARKER.match(lines[i - 1]) if i else None
        if fence.group(1) in ("python", "bash"):
            blocks.append(Block(fence.group(1), "\n".join(lines[i + 1:end]) + "\n", i + 1,
                                marker.group(1) if marker else None))
        i = end + 1
    return blocks


def markers_off_blocks(text: str) -> list[str]:
    """Problems with `not run` markers: one without a reason, or not directly before a
    ```python or ```bash fence."""
    lines, problems = text.splitlines(), []
    for i, line in enumerate(lines):
        if not line.startswith("<!-- not run"):  # a marker is a line of its own
            continue
        marker = MARKER.match(line)
        if not marker or not marker.group(1).strip():
            problems.append(f"line {i + 1}: a marker needs a reason: <!-- not run: REASON -->")
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if not re.match(r"^```(python|bash)\s*$", nxt):
            problems.append(f"line {i + 1}: a marker must stand directly before a ```python "
                            f"or ```bash fence")
    return problems


# What bash notes of a call: its argument count, then its arguments (NUL-separated).
NOTE = 'printf "%s\\0" "$#" "$@" >> "$CALLS"'
MAKE_DEMO = "__make demo__"  # `make demo`: the Makefile's demo recipe, scripts/demo.py


def landscape_calls(code: str, folder: Path) -> list[list[str]]:
    """The arguments of every `landscape` command of a bash block (also as
    `.venv/bin/landscape`, where `make demo` puts it), as bash expands them; `make demo` as
    [MAKE_DEMO]. Raises AssertionError naming the command where the block runs anything
    else."""
    calls = folder / ".landscape-calls"
    calls.write_bytes(b"")
    empty = folder / ".no-programs"
    empty.mkdir(exist_ok=True)
    venv = folder / ".venv" / "bin" / "landscape"
    venv.parent.mkdir(parents=True, exist_ok=True)
    venv.write_text(f"#!/bin/bash\n{NOTE}\n")
    venv.chmod(0o755)
    script = (f"landscape() {{ {NOTE}; }}\n"
              f'make() {{ if [ "$*" = demo ]; then set -- "{MAKE_DEMO}"; {NOTE}; '
              'else echo "runs make $*, not landscape" >&2; exit 127; fi; }\n'
              'command_not_found_handle() { echo "runs $1, not landscape" >&2; exit 127; }\n'
              "set -e\n" + code)
    done = subprocess.run(["/bin/bash", "-c", script], cwd=folder, text=True,
                          capture_output=True, env={"PATH": str(empty), "CALLS": str(calls),
                                                    "HOME": str(folder)})
    assert done.returncode == 0, (f"the block runs something other than landscape "
                                  f"({done.stderr.strip()}): mark it "
                                  "<!-- not run: REASON --> or keep to landscape commands")
    fields = calls.read_bytes().decode().split("\0")[:-1]
    out = []
    while fields:
        count = int(fields.pop(0))
        out.append(fields[:count])
        del fields[:count]
    return out


def fast(args: list[str]) -> list[str]:
    """The command with the fast settings added (see FAST)."""
    if not args:
        return args
    command, options = args[0], args[1:]
    if command == "record" and "--resume" not in options:
        extra = list(FAST_RECORD)
        if any("batch_size=" in a for a in options):
            extra = ["--seeds", "0"]
        if not _keeps_named_steps(options):
            extra += ["--max-steps", str(min(FAST_STEPS, _own_steps(options)))]
        return [command, *options, *extra]
    return [command, *options, *FAST.get(command, [])]


def _keeps_named_steps(options: list[str]) -> bool:
    for flag, value in zip(options, options[1:]):
        if flag in ("--save-weights-at", "--hessian-density-at") and re.search(r"\d", value):
            return True
        if flag == "--save-weights-every":
            return True
    return False


def _own_steps(options: list[str]) -> int:
    for flag, value in zip(options, options[1:]):
        if flag == "--max-steps":
            return int(value)
    return FAST_STEPS


def run_block(block: Block, folder: Path, namespace: dict, where: str) -> None:
    if block.language == "python":
        exec(compile(block.code, where, "exec"), namespace)  # noqa: S102 - the docs' own code
        return
    for args in landscape_calls(block.code, folder):
        for command in (demo_commands() if args == [MAKE_DEMO] else [args]):
            command = fast(command)
            result = CliRunner().invoke(main, command)
            assert result.exit_code == 0, (f"{where}: landscape {shlex.join(command)} exited "
                                           f"{result.exit_code}:\n{result.output[-3000:]}")


def demo_commands() -> list[list[str]]:
    """What `make demo` runs after its set-up: scripts/demo.py's commands (the Makefile's
    recipe is checked to be that script)."""
    recipe = re.search(r"^demo:.*\n\t(.*)$", (ROOT / "Makefile").read_text(), flags=re.M)
    assert recipe and recipe.group(1) == "$(BIN)/python scripts/demo.py --out $(OUT)", recipe
    Path("runs").mkdir(exist_ok=True)  # as the script makes it
    return load_script("demo").demo_commands("runs/demo")


def load_script(name: str):
    """scripts/NAME.py as a module (the scripts are not a package)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_code_block_runs(document, tmp_path, monkeypatch, one_thread):
    text = document.read_text(encoding="utf-8")
    assert not markers_off_blocks(text), markers_off_blocks(text)
    blocks = [b for b in code_blocks(text) if b.skip is None]
    monkeypatch.chdir(tmp_path)
    # The folder is on Python's path, as `PYTHONPATH=.` puts it for a bash block's command
    # (which runs in this process): a block may import a module an earlier block wrote there.
    monkeypatch.syspath_prepend(str(tmp_path))
    namespace: dict = {"__name__": "__docs__"}
    for block in blocks:
        where = f"{document.relative_to(ROOT)}:{block.line}"
        run_block(block, tmp_path, namespace, where)


def test_the_harness_reads_markers_and_finds_what_is_not_landscape(tmp_path):
    text = ("x\n<!-- not run: needs a GPU -->\n```bash\nmake demo\n```\n"
            "```python\nprint(1)\n```\n```text\nout\n```\n<!-- not run: -->\n```bash\nls\n```\n"
            "<!-- not run: stray -->\n\n```bash\nls\n```\n")
    blocks = code_blocks(text)
    assert [(b.language, b.line, b.skip) for b in blocks] == [
        ("bash", 3, "needs a GPU"), ("python", 6, None), ("bash", 13, ""), ("bash", 18, None)]
    assert markers_off_blocks(text) == [
        "line 12: a marker needs a reason: <!-- not run: REASON -->",
        "line 16: a marker must stand directly before a ```python or ```bash fence"]
    assert markers_off_blocks("Mark it with `<!-- not run: REASON -->` in prose.\n") == []
    code = 'C="--lrs 0.1 \\\n  --seeds 0"  # options\nlandscape record $C -o "a b.h5"\n'
    assert landscape_calls(code, tmp_path) == [["record", "--lrs", "0.1", "--seeds", "0", "-o",
                                                "a b.h5"]]
    with pytest.raises(AssertionError, match="runs make test, not landscape"):
        landscape_calls("landscape info a.h5\nmake test\n", tmp_path)
    with pytest.raises(AssertionError, match="runs ls, not landscape"):
        landscape_calls("ls runs/\n", tmp_path)
    assert landscape_calls("make demo  # the demo\n.venv/bin/landscape info runs/x.h5\n",
                           tmp_path) == [[MAKE_DEMO], ["info", "runs/x.h5"]]
    assert fast(["record", "--preset", "course", "-o", "c.h5"])[-6:] == [
        "--seeds", "0", "--batch-size", "8", "--max-steps", "5"]
    assert fast(["record", "--max-steps", "400", "--save-weights-at", "299,300,end"])[-4:] == \
        ["--seeds", "0", "--batch-size", "8"]
