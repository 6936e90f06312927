"""A study's report as data: the sections of `landscape report`'s page (what was run, the BN vs
no-BN verdicts with their intervals, the accuracy table, each run's status and plateau, the
warnings), as plain text cells that carry the numbers behind them. No HTML and no figures here:
`landscape.page` draws the figures and renders these sections with a Jinja2 template, so every
number on the page is computed in this module or below it.

A section is a title and a list of blocks (`Facts`, `Table`, `Notes`); later analyses (per-level
verdicts of a record's axes, ablations) join the page by adding sections, and the template
renders whatever rows a table has.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from landscape.config.axes import format_value
from landscape.models import MODELS
from landscape.report.compare import (NO_PAIR, _comparable_pairs, compare, metric_description,
                                      missing_metrics, verdict)
from landscape.report.factors import VerdictGroup, verdict_groups
from landscape.report.course import ALL_PARAMETERS, trajectory_source
from landscape.report.paper import direction_text, eta_range, probe_direction
from landscape.report.runs import LoadedRun, group_by_model, record_differences, run_notes
from landscape.report.verdicts import (PairVerdict, _plateau, data_subset, pair_title,
                                       plateau_lines)
from landscape.report.study_blocks import (Cell, Facts, Notes, Section, StudyReport, Table,
                                           verdict_cells)
from landscape.report.study_factors import (ablation_section, has_factors,
                                            level_verdict_section, lr_blocks)
from landscape.store import Record, from_user_loop


def study_report(runs: Sequence[LoadedRun]) -> StudyReport:
    """The sections of a study's report, from the runs of its records (`load_runs`): what was
    run (one block per record), a verdict per BN pair, the accuracy table, the ablation table,
    the runs, and the warnings. Runs without a recorded step appear in the runs table and the
    warnings only.

    With factors (axes, or records combined that differ in a setting) the verdicts are those
    within each cell of levels ("Verdicts by level") and the ablation table takes the accuracy
    table's place: pooled over levels, a verdict or an accuracy would mix settings."""
    by_model = group_by_model([r for r in runs if r.last_step is not None])
    records = _records(runs)
    sections = [Section("run", "What was run", tuple(_record_facts(rec, runs)
                                                     for rec in records.values()))]
    if has_factors(runs):
        sections.append(level_verdict_section(runs))
    else:
        for group in verdict_groups([r for rs in by_model.values() for r in rs]):
            sections.append(_verdict_section(by_model, group))
        sections.append(accuracy_section(by_model))
    sections.append(ablation_section(runs))
    sections.append(runs_section(runs))
    sections.append(warnings_section(runs, records, by_model))
    names = ", ".join(p.name for p in records)
    return StudyReport(f"BatchNorm and the optimization landscape: {names}", tuple(sections))


def _records(runs: Sequence[LoadedRun]) -> dict[Path, Record]:
    out: dict[Path, Record] = {}
    for run in runs:
        out.setdefault(run.source, run.record)
    return out


def _record_facts(record: Record, runs: Sequence[LoadedRun]) -> Facts:
    cfg, data = record.config, record.data
    mine = [r for r in runs if r.record is record]
    models = list(dict.fromkeys(r.model for r in mine))
    items = [("record", f"{record.path.name} (schema {record.schema_version}, created "
                        f"{record.created})"),
             ("models", "; ".join(f"{m}: {MODELS[m].description}" if m in MODELS else m
                                  for m in models))]
    if cfg.get("axes"):  # records with factor axes (levels beyond model × lr × seed)
        items.append(("axes", "; ".join(f"{name} = {', '.join(map(format_value, values))}"
                                        for name, values in cfg["axes"].items())
                      + " (each run trains at its levels; the lines below are the record's "
                        "other settings)"))
    items += [("optimizer", _optimizer_text(cfg)),
              ("learning rates", ", ".join(f"{lr:g}" for lr in cfg.get("lrs", ()))),
              ("seeds", ", ".join(map(str, cfg.get("seeds", [cfg.get("seed")])))),
              ("steps", _steps_text(cfg, mine)),
              ("data", _data_text(data))]
    probed = [r for r in mine if r.data.probe is not None and len(r.data.probe.step)]
    if probed:
        items.append(("probe", f"every {cfg['probe']['every']} steps, "
                               f"{direction_text(probe_direction(probed[0]))}, "
                               f"{eta_range(probed[0]).describe()}"))
    items += [("device, precision", f"{cfg.get('device', '?')}, {cfg.get('precision', 'float32')}"),
              ("versions", ", ".join(f"{k} {v}" for k, v in record.versions.items())),
              ("wall time", _wall_text(mine))]
    return Facts(tuple(items), caption=record.path.name)


def _optimizer_text(cfg: Mapping) -> str:
    parts = [str(cfg.get("optimizer", "?"))]
    if cfg.get("momentum"):
        parts.append(f"momentum {cfg['momentum']:g}{' (Nesterov)' if cfg.get('nesterov') else ''}")
    if cfg.get("weight_decay"):
        parts.append(f"weight decay {cfg['weight_decay']:g}")
    parts.append(f"{cfg.get('schedule', 'constant')} schedule")
    return ", ".join(parts)


def _steps_text(cfg: Mapping, runs: Sequence[LoadedRun]) -> str:
    planned = [f"{cfg['epochs']} epochs" if cfg.get("epochs") else "",
               f"at most {cfg['max_steps']:,} steps" if cfg.get("max_steps") else ""]
    done = [r.info.steps_done for r in runs]
    recorded = (f"; {min(done):,} to {max(done):,} steps done per run" if done and
                min(done) != max(done) else f"; {done[0]:,} steps done per run" if done else "")
    axes = cfg.get("axes") or {}
    batch = (f"batch {', '.join(map(format_value, axes['batch_size']))} (an axis)"
             if "batch_size" in axes else f"batch {cfg.get('batch_size')}")
    if from_user_loop(cfg):  # a user's loop: no plan, its steps as trained
        planned = ["your own loop (landscape.Recorder)"]
    return (", ".join(p for p in planned if p) or "?") + f", {batch}" + recorded


def _data_text(data: Mapping) -> str:
    if data.get("description"):  # a user's data, which landscape did not load
        return str(data["description"])
    counts = [f"{data[k]:,} {what}" for k, what in (("n_train", "training"),
                                                    ("n_val", "validation"),
                                                    ("n_test", "held-out"))
              if isinstance(data.get(k), int) and data.get(k)]
    note = str(data.get("note", ""))
    subset = (" (a subset: not results on the full dataset)"
              if data_subset(data) and "subset" not in note else "")
    return f"{data.get('name', '?')}: {' / '.join(counts)} samples{subset}; {note}"


def _wall_text(runs: Sequence[LoadedRun]) -> str:
    seconds = [r.info.seconds for r in runs]
    if not seconds:
        return "-"
    return (f"{sum(seconds):,.1f} s of training over {len(seconds)} runs "
            f"(longest run {max(seconds):,.1f} s)")


def _verdict_section(by_model: Mapping[str, Sequence[LoadedRun]],
                     group: VerdictGroup) -> Section:
    v = group.pooled.verdict
    a, b = v.model_a, v.model_b
    comp = compare(by_model, a, b)
    metrics = list(dict.fromkeys([r.metric for r in v.rows] + [r.metric for r in comp.rows]))
    medians = Table(
        ("metric", "phase", f"median {a}", f"median {b}", f"{a}/{b}", f"n {a}", f"n {b}"),
        tuple((Cell(r.metric), Cell(r.phase), _number(r.median_a, 4), _number(r.median_b, 4),
               _number(r.ratio, 4), Cell(str(r.n_a), r.n_a), Cell(str(r.n_b), r.n_b))
              for r in comp.rows),
        caption="The medians behind the ratios, per phase (all seeds and lrs pooled)")
    missing = missing_metrics(by_model, a, b, comp)
    # A glossary (metric: its formula), in the page's ink rather than a grey note.
    meaning = [(m, _describe(m)) for m in metrics]
    parameter = trajectory_source([*by_model[a], *by_model[b]])
    meaning.append(("trajectory metrics", f"of {parameter or ALL_PARAMETERS}"))
    if missing:
        meaning.append(("not available for both models", ", ".join(missing)))
    return Section(f"verdict-{a}-{b}", pair_title(v),
                   (verdict_cells(v), *lr_blocks(group), _plateau_notes(v),
                    Facts(tuple(meaning), "What the metrics are"), medians))


def _plateau_notes(v: PairVerdict) -> Notes:
    """The text summary's plateau lines: its explanation as one paragraph, then one line per
    model and lr (the indented ones)."""
    lines = plateau_lines(v)
    return Notes(tuple(line.strip() for line in lines if line.startswith("  ")),
                 "Initial plateaus",
                 " ".join(line for line in lines if not line.startswith("  ")))


def _describe(metric: str) -> str:
    try:
        return metric_description(metric)
    except ValueError:  # a metric the verdict has that the comparison table does not describe
        return "(see docs/figures.md)"


def _number(value: float, digits: int = 3) -> Cell:
    value = float(value)
    return Cell(f"{value:.{digits}g}" if math.isfinite(value) else "-",
                value if math.isfinite(value) else None)


def _last(values: np.ndarray) -> float:
    return float(values[-1]) if len(values) else float("nan")


def accuracy_section(by_model: Mapping[str, Sequence[LoadedRun]]) -> Section:
    """Per model and learning rate: the last evaluation's held-out and training accuracy,
    median over the seeds and the range, and the held-out loss."""
    rows = []
    for model, runs in by_model.items():
        for lr in sorted({r.lr for r in runs}):
            group = sorted((r for r in runs if r.lr == lr), key=lambda r: r.seed)
            test = np.array([_last(r.data.eval.test_acc) for r in group])
            train = np.array([_last(r.data.eval.train_acc) for r in group])
            loss = np.array([_last(r.data.eval.test_loss) for r in group])
            rows.append((Cell(model), Cell(f"{lr:g}", lr),
                         Cell(", ".join(str(r.seed) for r in group)),
                         _median(test, percent=True), _range(test), _median(train, percent=True),
                         _median(loss)))
    return Section("accuracy", "Accuracy", (Table(
        ("model", "lr", "seeds", "held-out accuracy (%, median)", "range over seeds (%)",
         "training accuracy (%, median)", "held-out loss (median)"),
        tuple(rows),
        caption="At each run's last evaluation (held-out images in eval mode; the training "
                "accuracy on the batches of the last epoch, as trained)",
        notes=("A diverged run counts with its last evaluation before it diverged; '-': the "
               "task has no accuracy or the run was never evaluated.",)),))


def _median(values: np.ndarray, *, percent: bool = False) -> Cell:
    """The median of the finite values; `percent`: a fraction shown (and kept) in %."""
    finite = values[np.isfinite(values)]
    median = float(np.median(finite)) if len(finite) else float("nan")
    return _percent(median) if percent else _number(median)


def _percent(fraction: float) -> Cell:
    """An accuracy in % with one decimal, as every table of the page shows accuracies."""
    value = 100.0 * fraction
    return Cell(f"{value:.1f}", value) if math.isfinite(value) else Cell("-")


def _range(values: np.ndarray) -> Cell:
    """The range over seeds of accuracies (fractions), in %."""
    finite = 100.0 * values[np.isfinite(values)]
    if len(finite) < 2:
        return Cell("-")
    return Cell(f"{finite.min():.1f} to {finite.max():.1f}", float(finite.max() - finite.min()))


def runs_section(runs: Sequence[LoadedRun]) -> Section:
    """Every run: its record, status, steps, initial plateau and last held-out accuracy."""
    rows = []
    for run in runs:
        info = run.info
        status = info.status + (f" at step {info.diverged_step}"
                                if info.diverged_step is not None else "")
        if info.stop_reason == "early_stop":
            status += " (early stop)"
        if run.last_step is None:
            plateau = Cell("-")
        else:
            p = _plateau(run)
            plateau = Cell(f"{'all ' if p.whole_run else ''}{p.steps:,}", p.steps)
        rows.append((Cell(run.run_id), Cell(run.source.name), Cell(run.model),
                     Cell(f"{run.lr:g}", run.lr), Cell(str(run.seed), run.seed), Cell(status),
                     Cell(f"{info.steps_done:,}", info.steps_done), plateau,
                     _percent(_last(run.data.eval.test_acc)),
                     Cell(f"{info.seconds:,.1f}", info.seconds)))
    return Section("runs", "Runs", (Table(
        ("run", "record", "model", "lr", "seed", "status", "steps", "plateau (steps)",
         "held-out accuracy (%)", "wall-clock time (s)"), tuple(rows),
        notes=("Plateau: steps before the training loss (running mean over 10 steps) fell 5% "
               "below its start; 'all': the run never left it.",)),))


def warnings_section(runs: Sequence[LoadedRun], records: Mapping[Path, Record],
                     by_model: Mapping[str, Sequence[LoadedRun]]) -> Section:
    """What a reader must know before trusting the numbers: reduced data, a single seed, runs
    that did not finish, records that differ, no BN pair to compare."""
    lines = []
    for path, record in records.items():
        if data_subset(record.data):
            lines.append(f"{path.name}: reduced setting: {_data_text(record.data)}")
        seeds = record.config.get("seeds", [record.config.get("seed")])
        if len(seeds) < 2:
            lines.append(f"{path.name}: 1 seed: the verdicts have no interval; record with "
                         f"--seeds 0,1,2 for one")
    lines += [f"The records differ in {note}" for note in record_differences(runs)]
    lines += run_notes(runs)
    if not _comparable_pairs(by_model):
        lines.append(f"{NO_PAIR} among {', '.join(by_model) or 'the runs'}: no verdict table.")
    return Section("warnings", "Warnings", (Notes(tuple(lines) or ("None.",)),))
