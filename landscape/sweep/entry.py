"""The one library entry of a record: `landscape.record` and `landscape.resume`.

Both plan the runs, check the options, the limits and the machine before the file exists,
take the writer lock, create (or reopen) the record, and hand the runs to an executor
(`landscape.sweep.executor`): the local one by default, the Ray one when asked. The command
line (`landscape record`) parses its options and makes this one call.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Union

import torch

from landscape.config import RecordConfig, record_config
from landscape.errors import ConfigError, RecordError
from landscape.instrument.user_run import check_rebuildable
from landscape.store import RecordWriter, check_record_output, check_replaceable, compact
from landscape.store import open_record
from landscape.sweep.executor import Executor, Sweep
from landscape.sweep.formats import recorded_memory_formats, run_memory_formats
from landscape.sweep.formats import with_memory_formats
from landscape.sweep.limits import check_counts, check_sweep_resources
from landscape.sweep.local import LocalExecutor
from landscape.store.lock import real_path, writer_lock
from landscape.sweep.init_from import init_from_records
from landscape.sweep.plans import RunResult, check_init_from, check_resume_compatible
from landscape.sweep.plans import check_planned_runs, check_weight_steps
from landscape.sweep.plans import distinct_run_configs, plan_runs, run_layouts, versions
from landscape.sweep.progress import run_progress
from landscape.sweep.run import ProgressFactory
from landscape.training.checkpoint import checkpoint_path
from landscape.training.tasks import Task, for_run, make_task


def _check_arguments(*, config: object = RecordConfig, path: object, overwrite: object = False,
                     executor: object = None, task: object = None, progress: object = None,
                     should_stop: object = None, device: object = None) -> None:
    """The library's arguments, of the types it uses (a ConfigError naming the argument, as
    the command line names an option): a dict given for the configuration, a number for the
    path or "yes" for overwrite would otherwise fail deep inside, or pass as something else."""
    wrong = None
    if not isinstance(config, RecordConfig) and config is not RecordConfig:
        wrong = ("config", "a RecordConfig (RecordConfig(**fields) or "
                           "RecordConfig.from_dict(a record's flat dict))", config)
    elif not isinstance(path, (str, os.PathLike)) or not str(path):
        wrong = ("the record's path", "a file path (str or pathlib.Path)", path)
    elif not isinstance(overwrite, bool):
        wrong = ("overwrite", "True or False", overwrite)
    elif executor is not None and not all(callable(getattr(executor, m, None)) for m in (
            "check", "session", "continue_runs", "run")):
        wrong = ("executor", "an executor (LocalExecutor, RayExecutor) or None", executor)
    elif task is not None and not (callable(getattr(task, "stream", None))
                                   and hasattr(task, "identity")):
        wrong = ("task", "a Task (landscape.training.tasks.make_task) or None", task)
    elif progress is not None and not isinstance(progress, bool) and not callable(progress):
        wrong = ("progress", "True, False, None or a progress factory (callable)", progress)
    elif should_stop is not None and not callable(should_stop):
        wrong = ("should_stop", "a function of no arguments that says True or False",
                 should_stop)
    elif device is not None and not isinstance(device, str):
        wrong = ("device", "a device name (cpu, cuda, cuda:N) or None", device)
    if wrong is not None:
        name, expected, value = wrong
        raise ConfigError(f"{name} must be {expected}, got {repr(value)[:60]} "
                          f"({type(value).__name__})")


Progress = Union[ProgressFactory, bool, None]


def _executor(executor: Executor | None, progress: Progress) -> Executor:
    """The executor to run: `executor`, or the local one with `progress` (True: a bar per run,
    as `landscape record` shows; False or None: none; or a ProgressFactory of one's own)."""
    if executor is None:
        if progress is True:
            progress = run_progress
        return LocalExecutor(progress or None)
    if progress is not True and progress not in (False, None):
        raise TypeError("progress is for the default (local) executor; give the executor its "
                        "own progress reporter instead")
    return executor


def record(
    config: RecordConfig,
    out: str | Path,
    *,
    executor: Executor | None = None,
    overwrite: bool = False,
    task: Task | None = None,
    progress: Progress = True,
    should_stop: Callable[[], bool] = lambda: False,
) -> list[RunResult]:
    """Train every (model, lr, seed) run of `config` and write the record to `out`.

    `executor`: who trains the runs (`LocalExecutor(progress)`, the default, or
    `RayExecutor(options, progress)`); `progress` is the default executor's: True (the
    default) shows a bar per run on stderr, as `landscape record` does; False shows nothing; a
    ProgressFactory (`landscape.sweep.run`) reports to your own display. `task` (see
    landscape.training.tasks.make_task) holds the data on the device; by default it is made
    from `config`. Everything that can be wrong with the options or the data is checked before
    the file is created. A run whose loss becomes non-finite is recorded as diverged and the
    sweep goes on. When `should_stop()` says yes, the runs in progress stop after their step,
    are checkpointed and marked interrupted, and no further run starts (`resume` continues).
    On KeyboardInterrupt the current run is marked interrupted and the interrupt propagates.
    """
    _check_arguments(config=config, path=out, overwrite=overwrite, executor=executor,
                     task=task, progress=progress, should_stop=should_stop)
    executor = _executor(executor, progress)
    out = Path(out)
    if config.reproducible and config.threads is None:  # pinned: kept for --resume
        config = config.with_changes(threads=torch.get_num_threads())
    check_record_output(out, inputs=init_from_records(config))
    check_counts(config)
    executor.check(config)
    device = torch.device(config.device)
    if task is None:
        task = make_task(config, device)
    plans = plan_runs(config)
    # Per distinct run configuration (a record with axes has several): its own steps, batches.
    groups = [(run_config, for_run(task, run_config), group)
              for run_config, group in distinct_run_configs(config, plans)]
    for run_config, run_task, _ in groups:
        check_weight_steps(run_config, run_task.stream(plans[0].seed).steps_per_epoch)
    layouts = run_layouts(config, plans, task)
    check_init_from(config, task)
    formats = run_memory_formats(config, task, device, plans)  # after the checks: fail fast
    layouts = with_memory_formats(layouts, plans, formats)
    by_id = {layout.run_id: layout for layout in layouts}
    check_sweep_resources(config, task, layouts, out, runs=None if not config.axes else [
        (run_config, run_task, [by_id[p.run_id] for p in group])
        for run_config, run_task, group in groups])
    if out.exists() and not overwrite:  # said before a cluster is joined for nothing
        raise RecordError(f"{out} already exists; pass --overwrite to replace it")
    with writer_lock(out) as lock:  # one writer per record
        # Under the lock, where a record being written is seen as one, and before anything
        # beside `out` (checkpoint, shards) is removed: --overwrite replaces records only.
        check_replaceable(out)
        with executor.session(out, new=True):
            checkpoint_path(out).unlink(missing_ok=True)  # a stale one: another record's
            with RecordWriter.create(out, config=config.to_dict(),
                                     data=task.identity.to_dict(), runs=layouts,
                                     versions=versions(config), overwrite=overwrite) as writer:
                lock.hold(out)  # the new file, whatever other name it gets
                results = executor.run(Sweep(config, plans, len(plans), task, writer, out,
                                             formats, should_stop))
        compact(out)  # the space the writer's flushes left behind (store.write.compact)
        return results


def resume(
    path: str | Path,
    *,
    executor: Executor | None = None,
    device: str | None = None,
    progress: Progress = True,
    should_stop: Callable[[], bool] = lambda: False,
) -> list[RunResult]:
    """Continue every run of the record at `path` that is not finished, from its checkpoint
    (or from its start if it has none); finished runs are left as they are. On a CPU the result
    is identical to a record that was never interrupted. `device` overrides the record's;
    `executor` and `progress` are as for `record`."""
    _check_arguments(path=path, executor=executor, progress=progress,
                     should_stop=should_stop, device=device)
    executor = _executor(executor, progress)
    # Through a symbolic link, the file it names is resumed (and stays where the link points).
    path = real_path(path)
    open_record(path)  # a missing or foreign file is named before a lock file is made for it
    with writer_lock(path) as lock:
        rec = open_record(path)
        check_rebuildable(rec.config, path, "continue it",
                          "continue it in your loop with landscape.Recorder(..., resume=True)")
        config = record_config(rec)
        if device is not None:
            config = config.with_changes(device=device)
        executor.check(config)
        task = make_task(config, torch.device(config.device))
        check_resume_compatible(path, config, data_now=task.identity.to_dict(),
                                data_then=rec.data)
        all_plans = plan_runs(config)
        check_planned_runs(path, [p.run_id for p in all_plans], list(rec.runs))
        plans = [p for p in all_plans if not rec.runs[p.run_id].finished]
        formats = recorded_memory_formats(rec, plans)
        with executor.session(path, new=False), RecordWriter.reopen(path) as writer:
            lock.hold(path)  # the copy that took the record's place
            plans, saved = executor.continue_runs(writer, plans, path)
            writer.start_appending()
            results = executor.run(Sweep(config, plans, len(all_plans), task, writer, path,
                                         formats, should_stop, resume_from=saved))
        compact(path)
        return results
