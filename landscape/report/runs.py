"""Runs loaded from records, grouped by model, and what a reader says about them (no numbers
of the figures yet: those are in the sibling modules).

Runs are loaded from one or more records and grouped by model; diverged and incomplete runs
take part up to their last recorded step. Each run carries its factors: the levels of its
record's axes and, when records are combined, the settings in which the records differ (so
that ablations recorded separately compare like one record with axes). Where run ids of
different records clash, every run is named by its record too ("a:vgg_lr0.1").
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from landscape.config import stored_config
from landscape.config.axes import FIXED_FIELDS, Axis
from landscape.errors import ConfigError, RecordError
from landscape.models import table_identity, variant_name
from landscape.store import Record, RunData, RunInfo, TapData, from_user_loop, open_record


@dataclass(frozen=True, eq=False)
class LoadedRun:
    """One run's arrays and the record it came from."""

    record: Record
    data: RunData
    # The levels this run is reported at (axis -> value; see the module docstring) and its
    # name among the runs loaded together (None: its own run id).
    factors: Mapping[str, Any] = field(default_factory=dict)
    name: str | None = None
    # Per-step series derived from the taps, by (quantity, parameter): taps can be large, so
    # they are read once per run and quantity, not once per figure.
    _derived: dict = field(default_factory=dict, repr=False)

    @property
    def info(self) -> RunInfo:
        return self.data.info

    @property
    def run_id(self) -> str:
        """The run's name among the runs loaded together: its run id, qualified by its record
        ("a:vgg_lr0.1") where records with clashing run ids are combined."""
        return self.name or self.info.run_id

    @property
    def config(self) -> Mapping[str, Any]:
        """The run's effective configuration (flat, as RecordConfig.to_dict)."""
        return self.info.config

    @property
    def model(self) -> str:
        """The name the run is reported under: its family, plus "_" and its normalization
        kind for a normalized one (`models.variant_name`: "vgg_bn", "torchvision:resnet18_gn";
        the run's own model name where neither is known)."""
        if self.norm is None:
            return self.info.model
        return variant_name(self.family, self.norm)

    @property
    def family(self) -> str:
        """The network without its normalization: the run's `family` attribute, or the model
        table's for a record written before runs stored it (the model's name where neither
        knows it)."""
        if self.info.family is not None:
            return self.info.family
        known = table_identity(self.info.model)
        return self.info.model if known is None else known[0]

    @property
    def norm(self) -> str | None:
        """The run's normalization kind ("none", "bn", "gn", ...): its `norm` attribute, or the
        model table's for an older record; None where neither knows it (never paired)."""
        if self.info.norm is not None:
            return self.info.norm
        known = table_identity(self.info.model)
        return None if known is None else known[1]

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
        return self.record.tap(self.info.run_id, parameter)


def load_runs(paths: Sequence[str | os.PathLike]) -> list[LoadedRun]:
    """Every run of every record in `paths`, in file order then record order, with its
    factors (see the module docstring).

    Raises RecordError if a file is not a readable record or is given twice.
    """
    if not paths:
        raise ConfigError("no record given")
    records: list[Record] = []
    seen_files: dict[Path, Path] = {}
    for path in paths:
        path = Path(path)
        resolved = path.resolve()
        if resolved in seen_files:
            raise RecordError(f"{path} is given twice")
        seen_files[resolved] = path
        records.append(_checked(open_record(path)))
    differing = _differing_settings(records)
    ids = [run_id for record in records for run_id in record.runs]
    clash = len(set(ids)) != len(ids)
    labels = _record_labels([r.path for r in records])
    if clash and not differing:
        differing = ["record"]  # the same settings twice: the record is what tells them apart
    runs: list[LoadedRun] = []
    for record, label in zip(records, labels):
        for run_id, info in record.runs.items():
            factors = {k: v for k, v in info.factors.items() if k not in MODEL_FIELDS}
            for key in differing:
                if key not in factors:
                    factors[key] = label if key == "record" else _hashable(info.config.get(key))
            runs.append(LoadedRun(record, record.load(run_id), factors,
                                  f"{label}:{run_id}" if clash else None))
    _check_distinct_runs(runs)
    return runs


# Settings that are part of the name a run is reported under (`LoadedRun.model`): a level of
# the normalization is another network to compare, not a cell to compare within.
MODEL_FIELDS = ("norm",)


def _check_distinct_runs(runs: Sequence[LoadedRun]) -> None:
    """Refuse two runs of the same model, lr and seed whose levels agree wherever both have one
    (the same run recorded into two records, or one record's run and another's reference run):
    pooled into one cell, they would count as two seeds of one setting."""
    groups: dict[tuple, list[LoadedRun]] = {}
    for run in runs:
        group = groups.setdefault((run.model, run.lr, run.seed), [])
        for first in group:
            if all(run.factors[k] == v for k, v in first.factors.items() if k in run.factors):
                levels = "".join(f", {k}={v}" for k, v in {**first.factors,
                                                           **run.factors}.items())
                raise RecordError(
                    f"{first.source}:{first.info.run_id} and {run.source}:{run.info.run_id} are "
                    f"the same run ({run.model}, lr {run.lr:g}, seed {run.seed}{levels}); "
                    f"together they would count as two seeds: give one of the records, or "
                    f"record the other with other seeds")
        group.append(run)


def _checked(record: Record) -> Record:
    """`record`, once its configuration and each run's are ones this landscape can read
    (RecordError naming the record otherwise: the figures and tables read them key by key).
    A user loop's record (landscape.Recorder) stores its loop's configuration, checked as the
    Recorder wrote it, not a RecordConfig."""
    if from_user_loop(record.config):
        return record
    stored_config(record.config, record.path)
    for run_id, info in record.runs.items():
        stored_config(info.config, record.path, f"the configuration of run {run_id!r}")
    return record


# Settings that do not change what a run measures, the runs' own dimensions, and what is
# measured (records that differ there are noted by `record_differences`, not compared as
# levels): records that differ only in these are not told apart by them.
_NOT_FACTORS = (*MODEL_FIELDS, "models", "lrs", "seeds", "axes", "device", "data_dir",
                "download", "verify_md5", "flush_seconds", "checkpoint_seconds",
                *(key for key, why in FIXED_FIELDS.items() if "what is measured" in why))


def _differing_settings(records: Sequence[Record]) -> list[str]:
    """The configuration keys whose values differ between records (over their runs' effective
    configurations), in the configuration's order; empty for a single record."""
    if len(records) < 2:
        return []
    values: dict[str, list[set]] = {}
    for record in records:
        per_key: dict[str, set] = {}
        for info in record.runs.values():
            for key, value in info.config.items():
                if key not in _NOT_FACTORS:
                    per_key.setdefault(key, set()).add(repr(value))
        for key, seen in per_key.items():
            values.setdefault(key, []).append(seen)
    return [key for key, sets in values.items()
            if len(sets) != len(records) or any(s != sets[0] for s in sets[1:])]


def _record_labels(paths: Sequence[Path]) -> list[str]:
    """A short name per record: its file stem, or its path where two stems are the same."""
    stems = [p.stem for p in paths]
    return [s if stems.count(s) == 1 else str(p) for s, p in zip(stems, paths)]


def _hashable(value: Any) -> Any:
    """A setting as a level: lists as tuples, a mapping (--model-option's) as its sorted
    (key, value) pairs."""
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    return tuple(_hashable(v) for v in value) if isinstance(value, list) else value


def report_axes(runs: Sequence[LoadedRun]) -> list[Axis]:
    """The axes of `runs`' factors: first the records' own axes, as they were declared (names
    and values), then the settings combined records differ in, in the order they appear."""
    values: dict[str, list] = {}
    for record in {id(r.record): r.record for r in runs}.values():
        for name, declared in (record.config.get("axes") or {}).items():
            if name in MODEL_FIELDS:
                continue  # in the runs' names
            seen = values.setdefault(name, [])
            seen += [v for v in map(_hashable, declared) if v not in seen]
    held: dict[str, set] = {}
    for run in runs:
        for name, value in run.factors.items():
            held.setdefault(name, set()).add(_level_key(value))
            seen = values.setdefault(name, [])
            if value not in seen:
                seen.append(value)
    # Only the levels some run holds: a declared level no run was recorded at (a sweep cut
    # short, an edited record) is no cell of the report.
    return [Axis(name, tuple(v for v in vals if _level_key(v) in held[name]))
            for name, vals in values.items() if name in held]


def _level_key(value: Any) -> tuple[str, Any]:
    """A level as a key: 1 and True, 1 and 1.0 are equal in Python but different settings."""
    return type(value).__name__, value


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
        batch, n_train = run.config.get("batch_size"), run.record.data.get("n_train")
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
