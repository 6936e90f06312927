"""Walk the table of bad inputs in docs/errors.md: every row must give its message, a non-zero
exit code, one `Error:` line, no traceback, and no new record."""

import json
import re
import shlex
from pathlib import Path

import h5py
import pytest
import torch
from click.testing import CliRunner

from landscape.cli import main
from landscape.store import FORMAT_NAME, SCHEMA_VERSION

from conftest import TINY, huge_array_pickle, write_cifar_folder

DOC = Path(__file__).resolve().parents[1] / "docs" / "errors.md"
COMMANDS = {"`landscape record`": "record", "`landscape info` (and every reader of records)":
            "info", "`landscape plot`": "plot", "`landscape report`": "report",
            "`landscape summary`": "summary", "`landscape surface`": "surface",
            "`landscape prune`": "prune", "`landscape export`": "export"}


def table_rows():
    """(command, arguments, expected message) for each row under the command sections."""
    rows, command = [], None
    for line in DOC.read_text().splitlines():
        if line.startswith("## "):
            command = COMMANDS.get(line[3:].strip())
            continue
        match = re.match(r"\| `([^`]*)`( \(on a machine without CUDA\))? \| `(.*)` \|$", line)
        if command and match:
            # Rows about machines without CUDA cannot happen on a machine that has it.
            marks = [pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
                     ] if match.group(2) else []
            rows.append(pytest.param(command, match.group(1), match.group(3),
                                     id=f"{command} {match.group(1)}", marks=marks))
    return rows


@pytest.fixture(scope="module")
def places(tmp_path_factory, embedded):
    root = tmp_path_factory.mktemp("places")
    cifar = write_cifar_folder(root / "cifar", embedded, n_train=100, n_test=20)
    missing = write_cifar_folder(root / "cifar_missing", embedded, n_train=100, n_test=20)
    (missing / "cifar-10-batches-py" / "data_batch_3").unlink()
    (missing / "cifar-10-batches-py" / "test_batch").unlink()
    truncated = write_cifar_folder(root / "cifar_truncated", embedded, n_train=100, n_test=20)
    batch = truncated / "cifar-10-batches-py" / "data_batch_2"
    batch.write_bytes(batch.read_bytes()[:500])
    record = root / "record.h5"
    result = CliRunner().invoke(main, ["record", *TINY, "--model", "vgg", "--lrs", "0.01",
                                       "--max-steps", "2", "-o", str(record)])
    assert result.exit_code == 0, result.output
    weights_record = root / "weights.h5"
    result = CliRunner().invoke(main, ["record", *TINY, "--model", "vgg", "--lrs", "0.01",
                                       "--max-steps", "2", "--save-weights-at", "0,1,end",
                                       "-o", str(weights_record)])
    assert result.exit_code == 0, result.output
    truncated_record = root / "truncated.h5"
    truncated_record.write_bytes(record.read_bytes()[: record.stat().st_size // 2])
    future = root / "future.h5"
    future.write_bytes(record.read_bytes())
    with h5py.File(future, "r+") as f:
        f.attrs["schema_version"] = 99
    foreign = root / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = [1, 2, 3]
    # Files that claim to be records but are not quite: a header without run_ids, a schema
    # version that is no number, a configuration that is no JSON.
    foreign_header = root / "foreign_header.h5"
    with h5py.File(foreign_header, "w") as f:
        f.attrs["format"] = FORMAT_NAME
        f.attrs["schema_version"] = SCHEMA_VERSION
    bad_schema = root / "bad_schema.h5"
    bad_schema.write_bytes(record.read_bytes())
    with h5py.File(bad_schema, "r+") as f:
        f.attrs["schema_version"] = "three"
    bad_config = root / "bad_config.h5"
    bad_config.write_bytes(record.read_bytes())
    with h5py.File(bad_config, "r+") as f:
        f.attrs["config"] = '{"models": ["vgg",'
    keyless_config = root / "keyless_config.h5"  # valid JSON that lacks every key
    keyless_config.write_bytes(record.read_bytes())
    with h5py.File(keyless_config, "r+") as f:
        f.attrs["config"] = "{}"
    # A CIFAR-10 batch whose pickle declares 10**13 images (9 TiB) in a file of a few KiB.
    cifar_huge = write_cifar_folder(root / "cifar_huge", embedded, n_train=100, n_test=20)
    (cifar_huge / "cifar-10-batches-py" / "data_batch_1").write_bytes(huge_array_pickle())
    text = root / "notes.txt"
    text.write_text("not a record\n")
    existing = root / "existing.h5"
    existing.write_bytes(b"precious")
    return {"cifar": cifar, "cifar_missing": missing, "cifar_truncated": truncated,
            "record": record, "weights_record": weights_record, "truncated_record": truncated_record, "future": future,
            "foreign": foreign, "text": text, "existing": existing,
            "foreign_header": foreign_header, "bad_schema": bad_schema, "bad_config": bad_config,
            "keyless_config": keyless_config,
            "cifar_huge": cifar_huge,
            "missing_dir": root / "missing"}


def test_the_table_is_complete():
    assert len(table_rows()) >= 50


@pytest.mark.parametrize("command, arguments, message", table_rows())
def test_error_table_row(tmp_path, places, command, arguments, message):
    args = [a.format(**places, out=tmp_path / "out") for a in shlex.split(arguments)]
    if command == "record":
        # Quick settings for whatever the row does not set itself.
        defaults = {"--model": "vgg", "--lrs": "0.01", "--width": "0.125", "--max-steps": "1",
                    "--device": "cpu", "-o": str(tmp_path / "r.h5")}
        if "--resume" in args:
            defaults.pop("-o")  # --resume continues its record in place: -o is refused
        for option, value in defaults.items():
            if option not in args:
                args = [option, value, *args]
    before = {p: p.stat().st_mtime_ns for p in places.values() if p.is_file()}
    result = CliRunner().invoke(main, [command, *args])
    assert result.exit_code != 0, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    assert message in errors[0], result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "r.h5").exists()
    assert before == {p: p.stat().st_mtime_ns for p in before}  # nothing was modified
