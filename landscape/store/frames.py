"""A record's tables as pandas DataFrames (`Record.to_pandas`, `landscape export`): one long
table per kind, a row per run and step, so that a record goes into the tools people already use.

pandas is optional (`pip install 'bn-landscape[pandas]'`) and imported only here.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from landscape.errors import LandscapeError
from landscape.store.outputs import check_output, write_output
from landscape.store.schema import TableKind

if TYPE_CHECKING:
    import pandas

# `record` below is a landscape.store.read.Record; not imported, as read.py imports this module
# (Record.to_pandas) and imports must not go in a circle (tests/test_layers.py).

# The tables that are one row per step (the arrays a kept state or a tap holds are not).
TABLES = (TableKind.STEPS, TableKind.EVAL, TableKind.PROBE, TableKind.ICS, TableKind.HESSIAN,
          TableKind.HESSIAN_DENSITY, TableKind.SPARSITY)
IDENTITY = ("run_id", "model", "lr", "seed")


def import_pandas():
    try:
        import pandas
    except ImportError:
        raise LandscapeError("reading a record into pandas needs pandas: pip install pandas "
                             "(or pip install 'bn-landscape[pandas]')") from None
    return pandas


def record_frame(record: Any, table: str = TableKind.STEPS) -> "pandas.DataFrame":
    """Every run's rows of `table` ("steps", "eval", "probe", ...: TABLES), each row led by the
    run's identity (run_id, model, lr, seed; a table's own `lr` column is `<table>_lr`, e.g.
    `steps_lr`, the learning rate of each step). A column with several values per row becomes one
    column per value: `loss[0]`, `loss[1]`, ... (the probe's step lengths), or `distance[<layer>]`
    for a table measured per layer. Runs without the table add no rows."""
    pandas = import_pandas()
    if table not in TABLES:
        raise LandscapeError(f"no table {table!r} to export; tables: {', '.join(TABLES)}")
    frames = []
    for run_id, info in record.runs.items():
        columns = _table_columns(record, run_id, table)
        if columns is None:
            continue
        n = len(columns["step"])
        seed = info.attrs.get("seed", record.config.get("seed", 0))  # one seed before --seeds
        identity = {"run_id": [run_id] * n, "model": [info.model] * n,
                    "lr": np.full(n, info.lr), "seed": np.full(n, int(seed), dtype=np.int64)}
        # A table's own column named as an identity column (the learning rate of each step,
        # which a schedule changes, beside the run's lr) is prefixed with the table's name.
        columns = {f"{table}_{k}" if k in identity else k: v for k, v in columns.items()}
        frames.append(pandas.DataFrame({**identity, **columns}))
    if not frames:
        return pandas.DataFrame({name: [] for name in IDENTITY})
    return pandas.concat(frames, ignore_index=True)


def _table_columns(record: Any, run_id: str, table: str) -> dict[str, np.ndarray] | None:
    """The table's columns of one run as 1-D arrays (None when the run lacks the table)."""
    if table == TableKind.SPARSITY:
        data: Any = record.sparsity(run_id)
    else:
        data = getattr(record.load(run_id), table)
    if data is None:
        return None
    fields = {f.name: getattr(data, f.name) for f in dataclasses.fields(data)}
    labels = [str(layer) for layer in fields.pop("layers", ())]
    columns = {}
    for name, values in fields.items():
        values = np.asarray(values)
        if values.ndim == 1:
            columns[name] = values
            continue
        flat = values.reshape(len(values), -1)
        names = labels if labels and flat.shape[1] == len(labels) else range(flat.shape[1])
        for i, label in enumerate(names):
            columns[f"{name}[{label}]"] = flat[:, i]
    return columns


FORMATS = ("csv", "parquet")


def export_tables(record: Any, folder: Path, fmt: str = "csv",
                  tables: Sequence[str] | None = None) -> list[Path]:
    """Write each of `tables` (default: every one of TABLES the record holds rows of) as
    `<record stem>_<table>.<fmt>` in `folder`, one long table each (`record_frame`), and return
    the paths written. `fmt` "parquet" needs pyarrow."""
    if fmt not in FORMATS:
        raise LandscapeError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    for table in tables or ():
        if table not in TABLES:
            raise LandscapeError(f"--table: no table {table!r} to export; tables: "
                                 f"{', '.join(TABLES)}")
    import_pandas()
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401  (pandas writes parquet through it)
        except ImportError:
            raise LandscapeError("--format parquet needs pyarrow: pip install pyarrow (or "
                                 "pip install 'bn-landscape[parquet]'), or use --format csv"
                                 ) from None
    if not folder.is_dir():
        raise LandscapeError(f"--out: folder {folder} does not exist")
    paths = {table: folder / f"{record.path.stem}_{table}.{fmt}" for table in tables or TABLES}
    for path in paths.values():  # every one before the first is written
        check_output(path, inputs=[record.path], flag="--out")
    written = []
    for table, path in paths.items():
        frame = record_frame(record, table)
        if not len(frame) and not tables:
            continue  # a kind no run of this record measured
        if fmt == "csv":
            write_output(path, lambda file: spreadsheet_safe(frame).to_csv(file, index=False))
        else:
            write_output(path, lambda file: frame.to_parquet(file, index=False))
        written.append(path)
    return written


# A spreadsheet reads a cell that starts with one of these as a formula (CSV injection: a run
# id "=HYPERLINK(...)" would run when the file is opened). OWASP's advice, which spreadsheet
# programs honour: prefix such a cell with a single quote, shown as text and not evaluated.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(frame: "pandas.DataFrame") -> "pandas.DataFrame":
    """`frame` with every text cell that a spreadsheet would read as a formula prefixed with
    a single quote (numbers, negative ones included, are left alone)."""
    def quote(value: Any) -> Any:
        return "'" + value if isinstance(value, str) and value.startswith(FORMULA_STARTS) \
            else value

    numeric = import_pandas().api.types.is_numeric_dtype
    text = [name for name in frame.columns if not numeric(frame[name])]
    safe = frame.assign(**{name: frame[name].map(quote) for name in text}) if text else frame
    return safe.rename(columns=quote)  # column names (a crafted record's layer names)
