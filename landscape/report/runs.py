"""Runs loaded from records, grouped by model, and what a reader says about them (no numbers
of the figures yet: those are in the sibling modules).

Runs are loaded from one or more records (run ids must be unique across them) and grouped by
model; diverged and incomplete runs take part up to their last recorded step.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from landscape.errors import ConfigError, RecordError
from landscape.store import Record, RunData, RunInfo, TapData, open_record


@dataclass(frozen=True, eq=False)
class LoadedRun:
    """One run's arrays and the record it came from."""

    record: Record
    data: RunData
    # Per-step series derived from the taps, by (quantity, parameter): taps can be large, so
    # they are read once per run and quantity, not once per figure.
    _derived: dict = field(default_factory=dict, repr=False)

    @property
    def info(self) -> RunInfo:
        return self.data.info

    @property
    def run_id(self) -> str:
        return self.info.run_id

    @property
    def model(self) -> str:
        return self.info.model

    @property
    def lr(self) -> float:
        return self.info.lr

    @property
    def seed(self) -> int:
        """The run's seed (its initialization, data order and augmentation)."""
        return int(self.info.attrs.get("seed", 0))

    @property
    def source(self) -> Path:
        return self.record.path

    @property
    def diverged_step(self) -> int | None:
        """The step whose training loss was non-finite (None if the run did not diverge)."""
        return self.info.diverged_step

    @property
    def incomplete(self) -> bool:
        """Stopped before its planned end for a reason other than divergence (interrupted, or
        still running / its writer died)."""
        return not self.info.finished

    @property
    def last_step(self) -> int | None:
        """The last recorded training step (None if none was recorded)."""
        step = self.data.steps.step
        return int(step[-1]) if len(step) else None

    def tap(self, parameter: str) -> TapData:
        return self.record.tap(self.run_id, parameter)


def load_runs(paths: Sequence[str | os.PathLike]) -> list[LoadedRun]:
    """Every run of every record in `paths`, in file order then record order.

    Raises RecordError if a file is not a readable record, is given twice, or if two records
    hold a run with the same id (the message names the run and both files).
    """
    if not paths:
        raise ConfigError("no record given")
    runs: list[LoadedRun] = []
    seen_files: dict[Path, Path] = {}
    owner: dict[str, Path] = {}
    for path in paths:
        path = Path(path)
        resolved = path.resolve()
        if resolved in seen_files:
            raise RecordError(f"{path} is given twice")
        seen_files[resolved] = path
        record = open_record(path)
        for run_id in record.runs:
            if run_id in owner:
                raise RecordError(
                    f"run {run_id!r} is in both {owner[run_id]} and {path}; run ids must be "
                    f"unique across the records plotted together"
                )
            owner[run_id] = path
            runs.append(LoadedRun(record, record.load(run_id)))
    return runs


def group_by_model(runs: Sequence[LoadedRun]) -> dict[str, list[LoadedRun]]:
    """Runs per model: models in order of first appearance, each model's runs by ascending lr."""
    groups: dict[str, list[LoadedRun]] = {}
    for run in runs:
        groups.setdefault(run.model, []).append(run)
    return {model: sorted(group, key=lambda r: r.lr) for model, group in groups.items()}


def run_notes(runs: Sequence[LoadedRun]) -> list[str]:
    """One line per run that did not finish as planned (diverged, incomplete, empty)."""
    notes = []
    for run in runs:
        if run.last_step is None:
            notes.append(f"{run.run_id} ({run.source.name}): no step recorded "
                         f"(status {run.info.status}); left out of the figures")
        elif run.diverged_step is not None:
            notes.append(f"{run.run_id} ({run.source.name}): diverged at step "
                         f"{run.diverged_step} (non-finite training loss); plotted up to there")
        elif run.incomplete:
            notes.append(f"{run.run_id} ({run.source.name}): incomplete (status "
                         f"{run.info.status}), {run.last_step + 1} steps recorded")
    return notes


# Settings that make runs of different records not directly comparable.
_COMPARABLE_KEYS = ("optimizer", "momentum", "weight_decay", "batch_size", "seeds", "subset",
                    "width", "crop_padding", "flip", "mean", "std")


def full_batch(runs: Sequence[LoadedRun]) -> bool:
    """Whether every run trained on its whole training set at every step (batch size at least
    the number of training samples, as the deep linear network's full-batch GD), so that
    consecutive steps share their batch."""
    def whole(run: LoadedRun) -> bool:
        batch, n_train = run.record.config.get("batch_size"), run.record.data.get("n_train")
        return isinstance(batch, int) and isinstance(n_train, int) and batch >= n_train
    return bool(runs) and all(whole(run) for run in runs)


def record_differences(runs: Sequence[LoadedRun]) -> list[str]:
    """Training settings and data that differ between the records of `runs` (empty if one
    record, or if they agree), e.g. ["optimizer: adam (a.h5), sgd (b.h5)"]."""
    records: dict[Path, Record] = {}
    for run in runs:
        records.setdefault(run.source, run.record)
    if len(records) < 2:
        return []
    out = []
    items = [(p.name, r.config) for p, r in records.items()]
    items_data = [(p.name, r.data) for p, r in records.items()]
    for key in _COMPARABLE_KEYS:
        values = {name: cfg.get(key) for name, cfg in items}
        if len({repr(v) for v in values.values()}) > 1:
            out.append(f"{key}: " + ", ".join(f"{v} ({n})" for n, v in values.items()))
    datasets = {name: (d.get("name"), d.get("n_train"), d.get("n_test")) for name, d in items_data}
    if len(set(datasets.values())) > 1:
        out.append("data: " + ", ".join(f"{v[0]} {v[1]}/{v[2]} ({n})"
                                        for n, v in datasets.items()))
    return out
