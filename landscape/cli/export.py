"""`landscape export`: a record's tables as CSV or Parquet files, for pandas, R, spreadsheets."""

from __future__ import annotations

from pathlib import Path

import click

from landscape.cli._types import CommaList
from landscape.cli.common import user_errors
from landscape.store import open_record
from landscape.store.frames import FORMATS, TABLES, export_tables


@click.command(short_help="Write a record's tables as CSV or Parquet files.")
@click.argument("record_path", metavar="RECORD.h5", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="csv", show_default=True,
              help="csv, or parquet (needs pyarrow).")
@click.option("--table", "tables", type=CommaList(), default=None, metavar="NAMES",
              help=f"Comma-separated tables to write ({', '.join(TABLES)}); default: every "
                   f"one the record holds rows of.")
@click.option("--out", "-o", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder to write into (default: the record's own folder).")
@user_errors
def export(record_path: Path, fmt: str, tables: tuple[str, ...] | None, out: Path | None
           ) -> None:
    """Write each table of RECORD.h5 as one long table, RECORD_<table>.csv (or .parquet): a row
    per run and step, led by run_id, model, lr and seed, then every column of the table (a
    column with several values per step, such as the probe's step lengths, as loss[0],
    loss[1], ...). The same tables as `Record.to_pandas(table)` in Python."""
    record = open_record(record_path)
    for path in export_tables(record, out or record_path.parent, fmt, tables):
        click.echo(f"Wrote {path}")
