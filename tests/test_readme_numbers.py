"""scripts/readme_numbers.py runs the demo's commands and writes the end of the demo's output
into the README between its markers, and nothing else; here on fast settings (two seeds, a few
steps at a small batch), into a copy of the README."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from landscape.cli import main
from test_docs_blocks import ROOT, load_script

FAST = "--max-steps 3 --seeds 0,1 --batch-size 16"


def test_the_readme_block_is_the_demos_ending(tmp_path, monkeypatch, one_thread):
    numbers = load_script("readme_numbers")
    readme = tmp_path / "README.md"
    original = (ROOT / "README.md").read_text(encoding="utf-8")
    readme.write_text(original, encoding="utf-8")
    ran = []

    def in_process(commands):  # the demo's commands, here in this process (torch loaded once)
        for command in commands:
            ran.append(command)
            result = CliRunner().invoke(main, [*command, *(["--dpi", "30"] if command[0] in (
                "plot", "report") else [])])
            assert result.exit_code == 0, result.output
        return 75.0

    monkeypatch.setattr(numbers.demo, "run", in_process)
    out = tmp_path / "runs" / "demo"
    numbers.main(["--readme", str(readme), "--out", str(out), "--record-options", FAST])
    assert ran == numbers.demo.demo_commands(str(out), FAST.split())
    assert [c[0] for c in ran] == ["record", "plot", "record", "plot", "report", "report"]
    written = readme.read_text(encoding="utf-8")
    begin, end = written.index(numbers.BEGIN), written.index(numbers.END)
    # Only the block changed, and it is the demo's ending from those records.
    assert written[:begin] == original[:original.index(numbers.BEGIN)]
    assert written[end:] == original[original.index(numbers.END):]
    block = written[begin + len(numbers.BEGIN):end]
    ending = numbers.demo.ending(str(out), 75.0, 0.0)
    assert block.startswith("\n```text\n") and block.endswith("```\n")
    body = block[len("\n```text\n"):-len("```\n")].rstrip()
    assert body.rsplit("\n", 1)[0] == ending.rsplit("\n", 1)[0]  # all but the load average
    assert "sgd, lr 0.1; probe along the gradient" in body
    assert "adam, lrs 0.0001, 0.0005, 0.001, 0.002 pooled" in body
    assert "make demo took 1 min 15 s" in body
    # Run again: the same README, block for block (the markers stay, nothing accumulates).
    assert numbers.replace_block(written, body) == written


def test_missing_markers_are_said_before_the_demo_runs(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# no markers\n", encoding="utf-8")
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "readme_numbers.py"),
                           "--readme", str(readme), "--out", str(tmp_path / "demo")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and done.stderr.startswith("Error: the README needs one line")
    assert done.stderr.count("\n") == 1  # one line, no traceback
    assert not (tmp_path / "demo-paper.h5").exists()
    with pytest.raises(ValueError, match="around its demo block"):
        load_script("readme_numbers").replace_block("x\n", "y")
