"""Reading records: `open_record` reads a record's header and its runs' state; `Record.load`
and `Record.tap` read a run's arrays into small frozen dataclasses (`landscape.store.run_data`,
filled by `landscape.store.loading`).

Each access opens the file anew in SWMR-read mode (see `_hdf5`), so a record can be read
while it is being written, and after its writer died.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

from landscape.errors import RecordError
from landscape.store._hdf5 import (decode_attr, open_for_reading, read_table, read_table_column,
                                   json_attr, schema_version)
from landscape.store.loading import (layer_names, load_run, read_run_info, run_group,
                                     weights_table)
from landscape.store.run_data import (RunData, RunInfo, SavedWeights, SparsityData, SurfaceData,
                                      TapData)
from landscape.store.schema import SURFACES, TableKind


@dataclass(frozen=True)
class Record:
    """A record's header; arrays are read on demand with `load` and `tap`."""

    path: Path
    schema_version: int
    created: str
    versions: Mapping[str, str]
    config: Mapping[str, Any]
    data: Mapping[str, Any]
    runs: Mapping[str, RunInfo]

    def load(self, run_id: str) -> RunData:
        """Every per-step, evaluation and probe array of one run."""
        with open_for_reading(self.path) as file, damaged(self.path, run_id, "its tables"):
            return load_run(run_group(file, run_id, self.path), self.runs[run_id])

    def sparsity(self, run_id: str) -> SparsityData | None:
        """The DessiLBI path of one run; None for a run of another optimizer."""
        with open_for_reading(self.path) as file, damaged(self.path, run_id, "its sparsity"):
            group = run_group(file, run_id, self.path)
            if TableKind.SPARSITY not in group:
                return None
            table = group[TableKind.SPARSITY]
            columns = read_table(table)
            return SparsityData(layers=layer_names(table, columns), **columns)

    def gamma(self, run_id: str) -> dict[str, np.ndarray]:
        """Γ of each coupled parameter at the run's last planned step (float32, the weight's
        shape); empty for a run of another optimizer or one that stopped before that step."""
        with open_for_reading(self.path) as file, damaged(self.path, run_id, "its Γ"):
            group = run_group(file, run_id, self.path)
            out = {}
            for param, table in group.get(TableKind.GAMMA, {}).items():
                rows = read_table(table)
                if len(rows["step"]):
                    out[param] = rows["gamma"][-1]
            return out

    def weight_steps(self, run_id: str) -> np.ndarray:
        """The steps at which run `run_id` kept its weights (int64, ascending; empty if none)."""
        with open_for_reading(self.path) as file, damaged(self.path, run_id,
                                                          "its kept weights"):
            group = run_group(file, run_id, self.path)
            if TableKind.WEIGHTS not in group:
                return np.zeros(0, dtype=np.int64)
            return _steps(read_table_column(group[TableKind.WEIGHTS], "step"))

    def weights(self, run_id: str, step: int | None = None) -> SavedWeights:
        """The weights run `run_id` kept at `step` (None: the last ones it kept)."""
        with open_for_reading(self.path) as file, damaged(self.path, run_id,
                                                          "its kept weights"):
            table = weights_table(file, self.path, run_id)
            steps = _steps(read_table_column(table, "step"))
            if not len(steps):
                raise RecordError(f"run {run_id!r} of {self.path} has not kept any weights yet")
            if step is None:
                row = len(steps) - 1
            else:
                found = np.flatnonzero(steps == step)
                if not len(found):
                    raise RecordError(
                        f"run {run_id!r} kept no weights at step {step}; it kept them at steps "
                        f"{', '.join(map(str, steps[:20]))}{' ...' if len(steps) > 20 else ''}")
                row = int(found[-1])
            names = [c for c in table.attrs["columns"] if c != "step"]
            state = {n: table[n][row] for n in names}
            for name, tensor in state.items():
                if np.asarray(tensor).dtype.kind not in "biuf":  # bool, integer or float
                    raise ValueError(f"its kept tensor {name!r} at step {int(steps[row])} holds "
                                     f"{np.asarray(tensor).dtype} values, not numbers")
            return SavedWeights(int(steps[row]), state)

    def surfaces(self, run_id: str) -> dict[str, SurfaceData]:
        """Every loss surface computed around run `run_id`'s kept weights (`landscape
        surface`), by name (empty if none)."""
        with open_for_reading(self.path) as file, damaged(self.path, run_id, "its surfaces"):
            group = run_group(file, run_id, self.path).get(SURFACES, {})
            return {name: _surface(name, run_id, surface) for name, surface in group.items()}

    def to_pandas(self, table: str = TableKind.STEPS):
        """One long pandas DataFrame of `table` ("steps", "eval", "probe", "ics", "hessian",
        "hessian_density", "sparsity") over every run: run_id, model, lr, seed, step and every
        column of the table (see `landscape.store.frames`; needs pandas)."""
        from landscape.store.frames import record_frame  # pandas is optional

        return record_frame(self, table)

    def tap(self, run_id: str, parameter: str) -> TapData:
        """The tapped gradient and weight-delta tensors of `parameter` in one run."""
        with open_for_reading(self.path) as file, damaged(self.path, run_id, "its taps"):
            group = run_group(file, run_id, self.path)
            taps = group.get(TableKind.TAPS)
            if taps is None or parameter not in taps:
                tapped = list(taps) if taps is not None else []
                raise RecordError(
                    f"run {run_id!r} did not tap {parameter!r}; tapped: "
                    f"{', '.join(tapped) or 'nothing'}"
                )
            return TapData(**read_table(taps[parameter]))


def _surface(name: str, run_id: str, group: Any) -> SurfaceData:
    """One stored surface; ValueError where its options or grids are not what `landscape
    surface` writes (a damaged record)."""
    options = {k: decode_attr(v) for k, v in group.attrs.items()}
    dims, points = options.get("dims"), options.get("points")
    if dims not in (1, 2) or not isinstance(points, int) or not 2 <= points <= 10_000 or \
            not all(isinstance(options.get(k), (int, float)) and not isinstance(
                options.get(k), bool) for k in ("step", "low", "high")):
        raise ValueError(f"its surface {name!r} has options no surface has: {options!r:.80}")
    grids = {column: group[column] for column in ("alpha", "loss", "accuracy", "done")}
    shapes = {"alpha": (points,), "loss": (points,) * dims, "accuracy": (points,) * dims,
              "done": (points,) * dims}
    for column, dataset in grids.items():
        if dataset.shape != shapes[column] or dataset.dtype.kind not in (
                "b" if column == "done" else "f"):
            raise ValueError(f"its surface {name!r} has a {column!r} of shape {dataset.shape} "
                             f"and {dataset.dtype} values, not {shapes[column]}")
    return SurfaceData(name=name, run_id=run_id, options=options,
                       **{column: dataset[()] for column, dataset in grids.items()})


def _steps(steps: np.ndarray) -> np.ndarray:
    """A table's step column: whole numbers (ValueError otherwise: a damaged record)."""
    if steps.dtype.kind not in "iu":
        raise ValueError(f"its step column holds {steps.dtype} values, not whole numbers")
    return steps


@contextlib.contextmanager
def damaged(path: Path, run_id: str, what: str = "") -> Iterator[None]:
    """Read a run's part (`what`: "its weights at step 3") under a guard: the errors h5py and
    numpy raise on a file no landscape writer wrote (a part missing, of another type or
    shape) become one RecordError naming the record, the run and the problem."""
    try:
        yield
    except RecordError:
        raise
    except (KeyError, ValueError, TypeError, AttributeError, IndexError, OSError,
            RecursionError) as exc:
        reason = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        part = f" ({what})" if what else ""
        raise RecordError(f"{path} is damaged: run {run_id!r}{part} cannot be read: "
                          f"{reason}") from None


def open_record(path: str | os.PathLike) -> Record:
    """Read a record's header (config, data identity, runs and their status)."""
    path = Path(path)
    with open_for_reading(path) as file:
        schema = schema_version(file, path)
        header = {name: json_attr(file, path, name, kind) for name, kind in
                  (("run_ids", list), ("versions", dict), ("config", dict), ("data", dict))}
        ids = header["run_ids"]
        if not all(isinstance(i, str) and i for i in ids) or len(set(ids)) != len(ids):
            raise RecordError(f"{path} is damaged: its 'run_ids' attribute is not a list of "
                              f"distinct run names")
        runs = {}
        for run_id in ids:
            with damaged(path, run_id):
                runs[run_id] = read_run_info(run_group(file, run_id, path), header["config"])
        return Record(
            path=path,
            schema_version=schema,
            created=str(decode_attr(file.attrs.get("created", "?"))),
            versions=header["versions"],
            config=header["config"],
            data=header["data"],
            runs=runs,
        )

