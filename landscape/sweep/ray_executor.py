"""Sweeps on Ray: every (model, lr, seed) run of a record is one Ray task (see docs/scaling.md).

The executor decides how runs are scheduled, not what they measure: each task trains its run
exactly as the local executor does (`landscape.sweep.run.train_one`) (same seeds, same data stream, same loop), into
its own shard file next to the record (`landscape.store.shards`), checkpointing there. The
driver holds the record's writer lock, created the record with every run's empty tables, and
copies each finished shard into it, so the record is identical run for run to one written by
the local executor.

Faults: a worker process that dies is retried by Ray (`max_retries`), and the retried task
continues its shard from the shard's checkpoint (bit-identical on a CPU, as `--resume` is).
Ctrl-C on the driver creates a stop file in the shards folder; every task sees it after its
current step, checkpoints and stops (a second Ctrl-C cancels the tasks at once). `--resume`
copies finished shards in and starts a task for every other unfinished run.

Ray is an optional dependency, imported (by `landscape.sweep.ray_cluster`) only when this
executor is asked for.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Protocol

import torch

from landscape.config import RecordConfig
from landscape.errors import ConfigError, LandscapeError, RecordError
from landscape.store import (
    RecordWriter,
    RunStatus,
    copy_shard_into,
    empty_run,
    open_record,
    run_into_shard,
    shard_folder,
    shard_path,
)
from landscape.store.side_files import refuse_link
from landscape.sweep.executor import Sweep
from landscape.sweep.formats import with_memory_formats
from landscape.sweep.limits import check_run_resources
from landscape.store.lock import writer_lock
from landscape.sweep.plans import RunPlan, RunResult, plan_config, run_layouts, versions
from landscape.sweep.ray_cluster import RayOptions, check_workers_see, connected, import_ray
from landscape.sweep.ray_progress import FileProgress, RunProgress, progress_path, read_progress
from landscape.sweep.run import train_one
from landscape.training.checkpoint import Checkpoint, checkpoint_path, load_checkpoint
from landscape.training.loop import RunOutcome
from landscape.training.precision import numerics
from landscape.training.tasks import Task, for_run, make_task
from landscape.training.tuning import FORMATS

STOP_FILE = "STOP"  # in the shards folder: the driver asks every task to stop after its step


class SweepProgress(Protocol):
    """What the driver tells about a sweep in flight."""

    def update(self, runs: Mapping[str, RunProgress]) -> None:
        """Every run that has reported: run id -> its last report (steps done and planned, last
        loss, the slow probe it is running)."""

    def finished(self, result: RunResult) -> None:
        """A run has finished or stopped."""


class RayExecutor:
    """Every run a Ray task (see the module docstring); `progress` hears of the whole sweep.
    A run stopped by `should_stop` is interrupted: its shard and checkpoint stay for
    `landscape.resume`, which copies finished shards in and continues every other unfinished
    run from its shard's checkpoint when it has one, else from its start."""

    def __init__(self, options: RayOptions = RayOptions(),
                 progress: SweepProgress | None = None) -> None:
        self.options, self.progress = options, progress
        self._ray = None

    def check(self, config: RecordConfig) -> None:
        self.options.validate(config)
        self._ray = import_ray()

    @contextlib.contextmanager
    def session(self, path: Path, *, new: bool):
        with connected(self._ray, self.options) as started_here:
            folder = shard_folder(path)
            refuse_link(folder, "the shard folder")  # never write shards through a planted link
            if new:
                shutil.rmtree(folder, ignore_errors=True)  # shards of an earlier record here
                folder.mkdir()
            else:
                folder.mkdir(exist_ok=True)
            if not started_here:  # a Ray started here for the sweep has one node: this machine
                check_workers_see(self._ray, folder)
            yield

    def continue_runs(self, writer: RecordWriter, plans: list[RunPlan], path: Path
                      ) -> tuple[list[RunPlan], dict[str, Checkpoint]]:
        """Every unfinished run is emptied in the record: its shard is copied in when it
        finishes. The run the local executor had in progress (the record's checkpoint)
        becomes a shard with its rows up to that checkpoint, and the checkpoint its shard's,
        so that its task continues it."""
        saved = load_checkpoint(checkpoint_path(path))
        for plan in plans:
            if saved is not None and saved.run_id == plan.run_id:
                shard = shard_path(path, plan.run_id)
                run_into_shard(writer, plan.run_id, shard, saved.loop.next_step)
                os.replace(checkpoint_path(path), checkpoint_path(shard))
            empty_run(writer, plan.run_id)  # its shard is copied in again when it finishes
        checkpoint_path(path).unlink(missing_ok=True)  # another record's, if any left
        return plans, {}

    def run(self, sweep: Sweep) -> list[RunResult]:
        return _run_tasks(self._ray, sweep.config, sweep.plans, sweep.n_runs, sweep.task,
                          sweep.writer, sweep.path, self.options, self.progress,
                          sweep.should_stop, sweep.formats)


def _run_tasks(ray, config: RecordConfig, plans: list[RunPlan], n_runs: int, task: Task,
               writer: RecordWriter, out: Path, options: RayOptions,
               progress: SweepProgress | None, should_stop: Callable[[], bool],
               formats: Mapping[str, str]) -> list[RunResult]:
    """Start a task per plan, copy each finished shard into the record as it comes."""
    folder = shard_folder(out)
    stop_file = folder / STOP_FILE
    stop_file.unlink(missing_ok=True)
    train = ray.remote(_train_shard).options(
        num_cpus=options.cpus(config), num_gpus=options.gpus(config),
        max_retries=options.max_retries)
    threads = options.threads()
    config_dict, identity = config.to_dict(), task.identity.to_dict()
    pending = {train.remote(config_dict, plan, n_runs, str(shard_path(out, plan.run_id)),
                            identity, str(stop_file), threads, formats.get(plan.run_id)): plan
               for plan in plans}
    results: dict[str, RunResult] = {}
    finished: dict[str, RunProgress] = {}  # progress of the runs copied in
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
            for ref in done:
                plan = pending.pop(ref)
                result = _result_of(ray, ref, plan, options)
                if result is None:  # asked to stop before it began
                    continue
                last = read_progress(folder).get(plan.run_id, RunProgress(
                    result.outcome.steps_done, result.outcome.steps_done, math.nan))
                finished[plan.run_id] = last._replace(probe=None)
                if result.outcome.status != RunStatus.INTERRUPTED:
                    shard = shard_path(out, plan.run_id)
                    copy_shard_into(writer, shard, plan.run_id)
                    shard.unlink()
                    checkpoint_path(shard).unlink(missing_ok=True)
                    progress_path(shard).unlink(missing_ok=True)
                results[plan.run_id] = result
                if progress is not None:
                    progress.finished(result)
            if should_stop() and not stop_file.exists():
                stop_file.touch()
            if progress is not None:
                progress.update(finished | read_progress(folder))
    except BaseException:
        for ref in pending:  # Ctrl-C twice, or an error: the tasks stop at once
            ray.cancel(ref)
        raise
    finally:
        stop_file.unlink(missing_ok=True)
    if not any(folder.iterdir()):
        folder.rmdir()
    return [results[p.run_id] for p in plans if p.run_id in results]


def _result_of(ray, ref, plan: RunPlan, options: RayOptions) -> RunResult | None:
    """The task's result; its user-facing error raised here as the same kind of error."""
    try:
        result = ray.get(ref)
    except ray.exceptions.RayTaskError:
        raise  # a bug in the task: its traceback is the useful report
    except ray.exceptions.RayError as exc:
        raise RecordError(f"run {plan.run_id} failed {options.max_retries + 1} times on Ray "
                          f"({type(exc).__name__}); its shard keeps what it recorded: "
                          f"continue with --resume") from None
    if isinstance(result, _WorkerError):
        raise (ConfigError if result.kind == "ConfigError" else RecordError)(result.message)
    return result


@dataclass(frozen=True)
class _WorkerError:
    kind: str
    message: str


class _StopFile:
    """should_stop() of a task: whether the driver's stop file exists (looked at most five
    times a second: it is asked after every step)."""

    def __init__(self, path: str) -> None:
        self._path, self._last, self._stop = path, 0.0, False

    def __call__(self) -> bool:
        now = time.monotonic()
        if not self._stop and now - self._last >= 0.2:
            self._last, self._stop = now, os.path.exists(self._path)
        return self._stop


_TASKS: dict[str, Task] = {}  # per worker process: the data of the sweep it last trained


def _task_for(config: RecordConfig, device: torch.device) -> Task:
    """The sweep's data on this worker, loaded once per worker process (Ray reuses them)."""
    key = repr((config.to_dict(), str(device)))
    if key not in _TASKS:
        _TASKS.clear()
        _TASKS[key] = make_task(config, device)
    return _TASKS[key]


def _worker_device(name: str) -> torch.device:
    # Ray shows a task only the GPUs it reserved, numbered from 0.
    return torch.device("cuda") if name.startswith("cuda") else torch.device(name)


def _train_shard(config_dict: dict, plan: RunPlan, n_runs: int, shard: str, identity: dict,
                 stop_file: str, threads: int, memory_format: str | None
                 ) -> RunResult | _WorkerError | None:
    """A Ray task: train one run into its shard (continuing it from its checkpoint if the
    shard has one), and return how it ended. None if the driver asked to stop before it
    began; a _WorkerError for anything the user can fix."""
    if os.path.exists(stop_file):
        return None
    torch.set_num_threads(threads)
    config = RecordConfig.from_dict(config_dict)
    device = _worker_device(config.device)
    try:
        task = _task_for(config, device)
        here = task.identity.to_dict()
        for key in ("name", "n_train", "n_test", "train_sha256", "test_sha256"):
            if here.get(key) != identity.get(key):
                raise RecordError(f"the data on {socket.gethostname()} differ from the data "
                                  f"the driver found ({key}); every node needs the same data "
                                  f"at the same path")
        with writer_lock(shard):
            return _train_shard_locked(config, plan, n_runs, Path(shard), task, device,
                                       _StopFile(stop_file), memory_format)
    except LandscapeError as exc:
        if isinstance(exc, ConfigError):  # its fields marked, for the driver to name as flags
            return _WorkerError("ConfigError", exc.message)
        return _WorkerError("RecordError", str(exc))


def check_room_here(config: RecordConfig, task: Task, plan: RunPlan, layout, shard: Path,
                    device: torch.device) -> None:
    """The driver checked memory and disk on its own machine; a worker has its own GPU (or
    RAM) and may see another disk: one clear line when this one lacks room for the run."""
    run_config = plan_config(config, plan)  # the run's own model options and batch size
    try:
        check_run_resources(run_config, for_run(task, run_config), plan.model, layout, shard,
                            device)
    except ConfigError as exc:
        raise ConfigError(f"the Ray worker on {socket.gethostname()} has no room for run "
                          f"{plan.run_id}: {exc.message}", field=exc.field) from None


def _train_shard_locked(config: RecordConfig, plan: RunPlan, n_runs: int, shard: Path,
                        task: Task, device: torch.device,
                        should_stop: Callable[[], bool], memory_format: str | None) -> RunResult:
    saved = None
    info = None
    if shard.exists():
        try:
            info = open_record(shard).runs[plan.run_id]
        except RecordError:  # killed while the shard was being created: start it again
            shard.unlink()
    if info is not None:  # a retried or resumed task: continue where the shard stopped
        if info.finished:  # finished before its driver could copy it
            return RunResult(plan, RunOutcome(info.status, info.steps_done, info.diverged_step,
                                              info.seconds, 0.0, float("nan"),
                                              info.stop_reason or ""))
        saved = load_checkpoint(checkpoint_path(shard))
        if saved is not None and saved.run_id != plan.run_id:
            saved = None
        writer = RecordWriter.reopen(shard)
        writer.run(plan.run_id).truncate(saved.loop.next_step if saved else 0)
        writer.start_appending()
    else:
        checkpoint_path(shard).unlink(missing_ok=True)
        layout = run_layouts(config, [plan], task)[0]
        if memory_format is not None:  # None: a run of a record made before the choice
            layout = with_memory_formats([layout], [plan], {plan.run_id: memory_format})[0]
        check_room_here(config, task, plan, layout, shard, device)
        writer = RecordWriter.create(shard, config=config.to_dict(),
                                     data=task.identity.to_dict(), runs=[layout],
                                     versions=versions(config))

    def progress(plan: RunPlan, n_runs: int, total: int):
        return contextlib.nullcontext(FileProgress(shard, total))

    with writer, numerics(device, config.allow_tf32, deterministic=config.reproducible,
                          threads=config.threads):
        run_task = task if memory_format is None else task.using(FORMATS[memory_format])
        result = train_one(config, plan, n_runs, run_task, writer,
                           device, progress, should_stop, shard, saved)
    if result.outcome.status != RunStatus.INTERRUPTED:
        checkpoint_path(shard).unlink(missing_ok=True)
    return result
