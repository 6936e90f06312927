"""The record as a file: HDF5 1.10's tools (Debian's hdf5-tools) read every table kind, numeric
attributes are numbers, an older record is rewritten in the 1.10 format when it is next written,
the large arrays are compressed, and the commands that only read start without torch."""

import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

import landscape.store.write as store_write
from landscape import open_record
from landscape.cli import main
from landscape.store import RecordWriter, storage_sizes

pytestmark = pytest.mark.usefixtures("one_thread")

RUN = "lenet_bn_lr0.01"
# Every kind of table a run can hold (docs/schema.md), and a loss surface.
TABLE_KINDS = ("steps", "eval", "probe", "ics", "activations", "taps", "weights", "hessian",
               "hessian_density", "sparsity", "gamma", "surfaces")


def record_every_table(path, cifar_dir):
    """A 4-step DessiLBI run of lenet_bn (BN, so that every probe applies) with every probe,
    kept weights and a 2-D loss surface around the last ones."""
    result = CliRunner().invoke(main, [
        "record", "--model", "lenet_bn", "--lrs", "0.01", "--optimizer", "slbi", "--width",
        "0.125", "--batch-size", "32", "--max-steps", "4", "--device", "cpu",
        "--data-dir", str(cifar_dir), "--no-verify", "--probe-every", "2", "--probe-count", "3",
        "--ics-every", "2", "--ics-layer", "features.conv2", "--activations-every", "2",
        "--activation-layer", "features.norm1", "--hessian-every", "2", "--hessian-k", "1",
        "--hessian-iters", "3", "--hessian-trace-samples", "2", "--hessian-density-at", "0",
        "--hessian-density-iters", "3", "--save-weights-at", "1,final", "-o", str(path)])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, ["surface", str(path), "--run", RUN, "--step", "4",
                                       "--dims", "2", "--points", "3", "--batch", "images",
                                       "--images", "32"])
    assert result.exit_code == 0, result.output
    return path


@pytest.fixture(scope="module")
def every_table(tmp_path_factory, cifar_dir):
    return record_every_table(tmp_path_factory.mktemp("file") / "every.h5", cifar_dir)


def hdf5_tools_errors(path) -> list[str]:
    """What `h5dump -H`, `h5dump` (every value) and `h5ls -r` report as errors on `path`."""
    errors = []
    for command in (["h5dump", "-H", str(path)], ["h5dump", str(path)], ["h5ls", "-r", str(path)]):
        out = subprocess.run(command, capture_output=True, text=True, timeout=60)
        if out.returncode or "error" in out.stderr.lower() or "*ERROR*" in out.stdout:
            errors.append(f"{' '.join(command[:-1])}: exit {out.returncode}: "
                          f"{out.stderr.strip()[:300]} "
                          f"{[line for line in out.stdout.splitlines() if 'ERROR' in line][:5]}")
    return errors


def test_hdf5_1_10_tools_read_every_table_kind(every_table):
    assert shutil.which("h5dump") and shutil.which("h5ls"), \
        "the HDF5 tools are missing: apt-get install hdf5-tools (.ci/run installs them)"
    listing = subprocess.run(["h5ls", "-r", str(every_table)], capture_output=True, text=True)
    for kind in TABLE_KINDS:
        assert f"/runs/{RUN}/{kind} " in listing.stdout, f"the test record lacks {kind}"
    assert hdf5_tools_errors(every_table) == []


def test_numeric_attributes_are_numbers(every_table):
    strings = []

    def visit(name, obj):
        for key, value in obj.attrs.items():
            if isinstance(value, (str, bytes)):
                text = value.decode() if isinstance(value, bytes) else value
                try:
                    float(text)
                    strings.append(f"{name}@{key} = {text!r}")
                except ValueError:
                    pass

    with h5py.File(every_table, "r", swmr=True) as file:
        file.visititems(visit)
        surface = file[f"runs/{RUN}/surfaces"]
        attrs = next(iter(surface.values())).attrs
        kinds = {key: type(attrs[key]) for key in ("step", "dims", "points", "seed", "images",
                                                    "low", "high")}
    assert strings == []
    assert all(issubclass(t, (np.integer, np.floating)) for t in kinds.values()), kinds


def test_an_older_record_is_rewritten_in_the_1_10_format(tmp_path, cifar_dir, monkeypatch):
    """A record written with libver "latest" (landscape before this change) reads; the 1.10
    tools cannot open it; the next write (here: reopening it as resume and surface do) rewrites
    it in the 1.10 format with every value kept."""
    monkeypatch.setattr(store_write, "WRITE_LIBVER", "latest")
    old = record_every_table(tmp_path / "old.h5", cifar_dir)
    monkeypatch.undo()
    assert hdf5_tools_errors(old) != []  # what the issue reported
    before = open_record(old)
    data, surfaces = before.load(RUN), before.surfaces(RUN)
    RecordWriter.reopen(old).close()
    assert hdf5_tools_errors(old) == []
    after = open_record(old)
    np.testing.assert_array_equal(after.load(RUN).hessian.converged, data.hessian.converged)
    np.testing.assert_array_equal(after.load(RUN).steps.loss, data.steps.loss)
    for name, surface in after.surfaces(RUN).items():
        np.testing.assert_array_equal(surface.done, surfaces[name].done)
        np.testing.assert_array_equal(surface.loss, surfaces[name].loss)
        assert surface.options == surfaces[name].options


def test_kept_weights_and_taps_are_compressed(tmp_path, cifar_dir):
    """Kept weights took ~3x their bytes (a ~1 MiB chunk of a small tensor's rows per column);
    one compressed state per chunk takes less than the values, and reads back exactly."""
    path = tmp_path / "kept.h5"
    result = CliRunner().invoke(main, [
        "record", "--model", "vgg_light", "--lrs", "0.05", "--optimizer", "sgd",
        "--batch-size", "32", "--max-steps", "3", "--device", "cpu",
        "--data-dir", str(cifar_dir), "--no-verify", "--save-weights-every", "1",
        "--save-weights-at", "final", "-o", str(path)])
    assert result.exit_code == 0, result.output
    sizes = storage_sizes(path)
    weights, taps = sizes["weights"], sizes["taps"]
    assert weights.data > 3e6  # 4 states of ~0.3M float32 parameters
    assert weights.stored < 0.95 * weights.data, weights
    # Gradients hardly compress; a 3-row tap took a whole ~1 MiB chunk per column before.
    assert taps.stored < 1.25 * taps.data, taps
    with h5py.File(path, "r", swmr=True) as file:
        table = file["runs/vgg_light_lr0.05/weights"]
        name = list(table.attrs["columns"])[1]
        assert table[name].compression == "gzip" and table[name].chunks[0] == 1
        kept = open_record(path).weights("vgg_light_lr0.05", 2).state[name]
        np.testing.assert_array_equal(kept, table[name][2])
    info = CliRunner().invoke(main, ["info", str(path)]).output
    line = next(line for line in info.splitlines() if line.startswith("File: "))
    assert f"weights {weights.stored / 1e6:.1f} MB ({weights.data / 1e6:.1f} MB of values)" \
        in line


@pytest.mark.parametrize("args", [["--version"], ["info", "RECORD"]], ids=["version", "info"])
def test_commands_that_only_read_do_not_import_torch(every_table, args):
    """torch takes seconds to import; `--version` and `info` need none of it."""
    args = [str(every_table) if a == "RECORD" else a for a in args]
    script = ("import sys\nfrom landscape.cli import main\n"
              f"try:\n    main({args!r}, prog_name='landscape')\nexcept SystemExit as e:\n"
              "    assert not e.code, e.code\n"
              "print('torch imported' if 'torch' in sys.modules else 'no torch')\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == "no torch", out.stdout
