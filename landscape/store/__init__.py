"""The HDF5 record: the one package that knows its layout (documented in docs/schema.md).

- `schema`: format constants, run statuses and stop reasons, table columns and names, run
  layouts. No h5py: the training loop and the recorders use these names.
- `write`: `RecordWriter`: creating a record, reopening it to resume or add to it, flushing and
  closing (a failed write repaired).
- `create`: a new run's group, state scalars and empty tables.
- `tables`: appending rows (`Table`), a run's writer (`RunWriter`: its tables, truncation past a
  resume point, its state).
- `surface_write`: a loss surface's grid, created and filled point by point (`SurfaceWriter`).
- `upgrade`: an older schema brought to the current one as a record is reopened for writing.
- `read`: `open_record` and the `Record` it returns (a run's arrays read on demand).
- `run_data`: the frozen dataclasses reading returns (`RunInfo`, `RunData`, `SavedWeights`, ...).
- `loading`: a run's state and arrays read from the file (older schema versions as the current).
- `_hdf5`: low-level HDF5 workarounds (SWMR-read opening, truncation check, attributes, a
  dead writer's status flags).
- `lock`: one writer per record (`writer_lock`), which readers consult before they clear a
  dead writer's flags.
- `_format`: the HDF5 file-format version, chunks and compression records are written with.
- `sizes`: how much of the file each kind of table takes.
- `frames`: a record's tables as pandas DataFrames (`Record.to_pandas`, `landscape export`).
- `copies`: new record files and the copies writers make next to a record (room checked first).
- `failed_writes`: the header repair that keeps a record openable after a failed write.
- `outputs`: the files commands write beside records (a report, figures, tables), refused
  where they would replace a record, an input or a file a writer holds, and written whole or
  not at all.

Every public name is re-exported here; import from `landscape.store`.
"""

from landscape.store._hdf5 import check_replaceable, write_error_reason
from landscape.store.read import Record, open_record
from landscape.store.run_data import (
    ActivationData,
    EvalData,
    HessianData,
    HessianDensityData,
    ICSData,
    ProbeData,
    RunData,
    RunInfo,
    SparsityData,
    SavedWeights,
    SurfaceData,
    StepData,
    TapData,
)
from landscape.store.schema import (
    FORMAT_NAME,
    RECORDER_SOURCE,
    RUN_STATUSES,
    SCHEMA_VERSION,
    STOP_REASONS,
    Column,
    RunLayout,
    RunStatus,
    StopReason,
    TableKind,
    activation_columns,
    eval_columns,
    from_user_loop,
    hessian_columns,
    hessian_density_columns,
    ics_columns,
    probe_columns,
    step_columns,
    tap_columns,
    table_path,
    weight_columns,
    surface_columns,
    surface_path,
)
from landscape.store.surface_write import SurfaceWriter
from landscape.store.tables import RunWriter, Table
from landscape.store.write import RecordWriter, compact
from landscape.store.shards import copy_shard_into, empty_run, shard_folder, shard_path
from landscape.store.shards import run_into_shard, shards_in_progress
from landscape.store.sizes import PartSize, storage_sizes
from landscape.store.outputs import check_output, check_record_output, write_output

__all__ = [
    "RECORDER_SOURCE", "from_user_loop",
    "compact",
    "FORMAT_NAME", "RUN_STATUSES", "SCHEMA_VERSION", "STOP_REASONS",
    "Column", "RunLayout", "RunStatus", "StopReason", "TableKind", "table_path",
    "activation_columns", "eval_columns", "hessian_columns", "hessian_density_columns",
    "ics_columns", "probe_columns", "step_columns", "tap_columns", "weight_columns",
    "surface_columns", "surface_path", "SurfaceWriter", "SurfaceData",
    "RecordWriter", "RunWriter", "Table", "write_error_reason", "check_replaceable",
    "ActivationData", "EvalData", "HessianData", "HessianDensityData", "ICSData", "ProbeData",
    "Record", "RunData", "RunInfo", "SavedWeights", "SparsityData", "StepData", "TapData",
    "open_record",
    "copy_shard_into", "empty_run", "run_into_shard", "shard_folder", "shard_path",
    "shards_in_progress", "PartSize", "storage_sizes",
    "check_output", "check_record_output", "write_output",
]
