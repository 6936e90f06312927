"""`make test` sets up what the tests need by itself (issue 30): the Debian packages that give
h5dump, h5ls, chromium and chromedriver are installed where a command is missing (as root, or
through sudo), one line says what to do where they cannot be, and `.ci/run` is nothing but
`make test`.

`make test-tools` runs with a PATH of stand-ins: `apt-get` and `sudo` that log their arguments,
`id` that says which user this is, and, where a test wants them present, the four commands."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = ("h5dump", "h5ls", "chromium", "chromedriver")
PACKAGES = "hdf5-tools chromium chromium-driver"


def _script(path: Path, body: str) -> None:
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)


def make_tools(tmp_path: Path, *, uid: int, sudo: str | None, present=()) -> tuple[int, str, str]:
    """Run `make test-tools` with stand-in commands; returns (exit code, stderr, the log of
    apt-get and sudo calls)."""
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir()
    _script(bin_dir / "id", f'echo {uid}')
    _script(bin_dir / "apt-get", f'echo "apt-get $*" >> {log}')
    (bin_dir / "env").symlink_to(shutil.which("env"))
    if sudo == "without-password":
        _script(bin_dir / "sudo", f'[ "$1" = -n ] && exit 0; echo "sudo $*" >> {log}; exec "$@"')
    elif sudo == "asks-password":
        _script(bin_dir / "sudo", f'[ "$1" = -n ] && exit 1; echo "sudo $*" >> {log}; exit 1')
    for name in present:
        _script(bin_dir / name, "exit 0")
    result = subprocess.run([shutil.which("make"), "-s", "-C", str(ROOT), "test-tools"],
                            env={"PATH": str(bin_dir)}, capture_output=True, text=True,
                            timeout=60)
    return result.returncode, result.stderr, log.read_text() if log.exists() else ""


def test_as_root_the_missing_packages_are_installed(tmp_path):
    code, stderr, calls = make_tools(tmp_path, uid=0, sudo=None, present=("h5ls",))
    assert code == 0, stderr
    assert calls.splitlines() == [
        "apt-get update -qq",
        f"apt-get install -y -qq --no-install-recommends {PACKAGES}"]
    assert "missing h5dump chromium chromedriver" in stderr


def test_a_user_with_sudo_installs_through_it(tmp_path):
    code, stderr, calls = make_tools(tmp_path, uid=1000, sudo="without-password")
    assert code == 0, stderr
    through_sudo = [line for line in calls.splitlines() if line.startswith("sudo ")]
    assert through_sudo == [
        "sudo apt-get update -qq",
        f"sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
        f"--no-install-recommends {PACKAGES}"]
    assert calls.splitlines()[-1] == \
        f"apt-get install -y -qq --no-install-recommends {PACKAGES}"


@pytest.mark.parametrize("sudo", [None, "asks-password"])
def test_without_root_or_sudo_one_line_says_what_to_install(tmp_path, sudo):
    code, stderr, calls = make_tools(tmp_path, uid=1000, sudo=sudo)
    assert code != 0
    lines = [line for line in stderr.splitlines() if line.startswith("make test:")]
    assert len(lines) == 1, stderr
    assert "missing h5dump h5ls chromium chromedriver and not root" in lines[0]
    assert f"sudo apt-get install -y -qq --no-install-recommends {PACKAGES}" in lines[0]
    assert "sudo apt-get update" not in calls and "apt-get install" not in calls


def test_nothing_is_installed_when_every_command_is_there(tmp_path):
    code, stderr, calls = make_tools(tmp_path, uid=1000, sudo=None, present=COMMANDS)
    assert (code, stderr, calls) == (0, "", "")


def test_ci_runs_only_the_readme_command():
    lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    assert lines == ["set -euo pipefail", 'cd "$(dirname "$0")/.."', "make test"]
    assert "make test" in (ROOT / "README.md").read_text()


def test_the_test_target_sets_up_the_tools_first():
    makefile = (ROOT / "Makefile").read_text()
    target = next(line for line in makefile.splitlines() if line.startswith("test:"))
    assert target.split(":", 1)[1].split() == ["setup", "test-tools"]
