"""Notebook access: `Record.to_pandas(table)` is the record's arrays as one long table, and
`landscape export` writes the same tables as CSV and Parquet."""

import sys

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from landscape import open_record
from landscape.cli import main

from conftest import TINY

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def recorded(tmp_path_factory, cifar_dir):
    """vgg_bn, two seeds, probed every 2 steps (3 step lengths), evaluated every 3."""
    out = tmp_path_factory.mktemp("export") / "rec.h5"
    result = CliRunner().invoke(main, [
        "record", "--model", "vgg_bn", "--lrs", "0.05", "--seeds", "0,1", "--optimizer",
        "sgd", *TINY, "--data-dir", str(cifar_dir), "--no-verify", "--probe-every", "2",
        "--probe-count", "3", "--eval-every", "3", "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_to_pandas_is_every_runs_arrays_in_one_long_table(recorded):
    rec = open_record(recorded)
    steps, probe = rec.to_pandas(), rec.to_pandas("probe")
    assert list(steps.columns[:5]) == ["run_id", "model", "lr", "seed", "step"]
    assert set(steps.run_id) == set(rec.runs) and set(steps.seed) == {0, 1}
    for run_id, info in rec.runs.items():
        data = rec.load(run_id)
        rows = steps[steps.run_id == run_id]
        assert (rows.model == info.model).all() and (rows.lr == info.lr).all()
        assert (rows.seed == info.attrs["seed"]).all()
        for column in ("step", "loss", "grad_norm", "update_norm", "grad_change"):
            np.testing.assert_array_equal(rows[column].to_numpy(), getattr(data.steps, column))
        np.testing.assert_array_equal(rows["steps_lr"].to_numpy(), data.steps.lr)
        probed = probe[probe.run_id == run_id]
        np.testing.assert_array_equal(probed.step.to_numpy(), data.probe.step)
        for k in range(3):
            np.testing.assert_array_equal(probed[f"loss[{k}]"].to_numpy(), data.probe.loss[:, k])
            np.testing.assert_array_equal(probed[f"eta[{k}]"].to_numpy(), data.probe.eta[:, k])
        np.testing.assert_array_equal(probed.beta.to_numpy(), data.probe.beta)
        evals = rec.to_pandas("eval")
        np.testing.assert_array_equal(evals[evals.run_id == run_id].test_acc.to_numpy(),
                                      data.eval.test_acc)
    assert len(rec.to_pandas("hessian")) == 0  # not measured: no rows, the identity columns


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export_writes_the_tables_to_pandas_gives(recorded, tmp_path, fmt):
    result = CliRunner().invoke(main, ["export", str(recorded), "--format", fmt,
                                       "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    # Only the tables the record has rows of: steps, eval and probe.
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f"rec_{table}.{fmt}" for table in ("eval", "probe", "steps")]
    rec = open_record(recorded)
    for table in ("steps", "eval", "probe"):
        path = tmp_path / f"rec_{table}.{fmt}"
        written = pd.read_csv(path) if fmt == "csv" else pd.read_parquet(path)
        expected = rec.to_pandas(table)
        assert list(written.columns) == list(expected.columns)
        if fmt == "parquet":  # binary: the very values and dtypes
            pd.testing.assert_frame_equal(written, expected)
        else:  # text: float32 values in their shortest decimal form
            pd.testing.assert_frame_equal(written, expected, check_dtype=False, rtol=1e-6)


def test_export_without_pyarrow_says_so_in_one_line(recorded, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # `import pyarrow` raises ImportError
    result = CliRunner().invoke(main, ["export", str(recorded), "--format", "parquet",
                                       "-o", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: --format parquet needs pyarrow: pip install pyarrow (or pip install "
        "'bn-landscape[parquet]'), or use --format csv"]
    assert list(tmp_path.iterdir()) == []
