"""Sweeps on Ray: every (model, lr, seed) run of a record is one Ray task (see docs/scaling.md).

The executor decides how runs are scheduled, not what they measure: each task trains its run
exactly as `landscape.sweep` does in one process (same seeds, same data stream, same loop), into
its own shard file next to the record (`landscape.store.shards`), checkpointing there. The
driver holds the record's writer lock, created the record with every run's empty tables, and
copies each finished shard into it, so the record is identical run for run to one written by
the local executor.

Faults: a worker process that dies is retried by Ray (`max_retries`), and the retried task
continues its shard from the shard's checkpoint (bit-identical on a CPU, as `--resume` is).
Ctrl-C on the driver creates a stop file in the shards folder; every task sees it after its
current step, checkpoints and stops (a second Ctrl-C cancels the tasks at once). `--resume`
copies finished shards in and starts a task for every other unfinished run.

Ray is an optional dependency, imported only here and only when this executor is asked for.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import secrets
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Protocol

import torch

from landscape.checkpoint import checkpoint_path, load_checkpoint
from landscape.config import RecordConfig
from landscape.errors import ConfigError, LandscapeError, RecordError
from landscape.limits import check_counts, check_sweep_resources
from landscape.store import (
    RecordWriter,
    RunStatus,
    copy_shard_into,
    empty_run,
    open_record,
    shard_folder,
    shard_path,
)
from landscape.sweep import (
    RunPlan,
    RunResult,
    _train_one,
    check_init_from,
    check_resume_compatible,
    plan_runs,
    run_layouts,
    versions,
)
from landscape.formats import memory_formats, recorded_memory_formats, with_memory_formats
from landscape.precision import numerics
from landscape.tuning import FORMATS
from landscape.tasks import Task, make_task
from landscape.train import RunOutcome
from landscape.version import __version__
from landscape.writer_lock import writer_lock

INSTALL_HINT = "pip install bn-landscape[ray]"
STOP_FILE = "STOP"  # in the shards folder: the driver asks every task to stop after its step


@dataclass(frozen=True)
class RayOptions:
    """Where the tasks run and what each one reserves.

    `address`: "local" starts a Ray instance on this machine for the sweep (and stops it
    afterwards); "auto" joins the cluster started on this machine with `ray start`; host:port
    joins that cluster. `cpus_per_run` and `gpus_per_run` are Ray resources (fractions allowed:
    0.25 GPUs packs four runs on one GPU); `gpus_per_run` None means 1 on CUDA, 0 on a CPU.
    `num_cpus` limits a local instance (None: every core)."""

    address: str = "local"
    cpus_per_run: float = 1.0
    gpus_per_run: float | None = None
    max_retries: int = 3
    num_cpus: int | None = None

    def gpus(self, config: RecordConfig) -> float:
        if self.gpus_per_run is not None:
            return self.gpus_per_run
        return 1.0 if config.device.startswith("cuda") else 0.0

    def validate(self, config: RecordConfig) -> None:
        if not self.cpus_per_run > 0:
            raise ConfigError(f"--cpus-per-run must be positive, got {self.cpus_per_run:g}")
        gpus = self.gpus(config)
        if gpus < 0:
            raise ConfigError(f"--gpus-per-run must be >= 0, got {gpus:g}")
        if gpus > 1 and gpus != int(gpus):
            raise ConfigError(f"--gpus-per-run above 1 must be a whole number of GPUs, got "
                              f"{gpus:g}")
        if config.device.startswith("cuda") and gpus == 0:
            raise ConfigError("--device cuda with --executor ray needs --gpus-per-run > 0 "
                              "(e.g. 0.25 to pack four runs on a GPU)")
        if config.device == "cpu" and gpus > 0:
            raise ConfigError(f"--gpus-per-run {gpus:g} with --device cpu: the runs would "
                              f"hold GPUs they do not use; use --device cuda or leave it out")
        if self.max_retries < 0:
            raise ConfigError(f"max_retries must be >= 0, got {self.max_retries}")


class SweepProgress(Protocol):
    """What the driver tells about a sweep in flight."""

    def update(self, runs: Mapping[str, tuple[int, int, float]]) -> None:
        """Every run that has reported: run id -> (steps done, steps planned, last loss)."""

    def finished(self, result: RunResult) -> None:
        """A run has finished or stopped."""


def import_ray():
    try:
        import ray
    except ImportError:
        raise ConfigError(f"--executor ray needs Ray, which is not installed: "
                          f"{INSTALL_HINT}") from None
    return ray


def record_on_ray(
    config: RecordConfig,
    out: str | Path,
    *,
    options: RayOptions = RayOptions(),
    overwrite: bool = False,
    task: Task | None = None,
    progress: SweepProgress | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> list[RunResult]:
    """`landscape.sweep.record` with every run a Ray task. Returns the results of the runs
    that ran, in plan order; a run stopped by `should_stop` is interrupted (its shard and
    checkpoint stay for `resume_on_ray`)."""
    out = Path(out)
    check_counts(config)
    options.validate(config)
    ray = import_ray()
    if task is None:
        task = make_task(config, torch.device(config.device))
    plans = plan_runs(config)
    layouts = run_layouts(config, plans, task.example_input())
    check_init_from(config)
    # Chosen (measured or cached) once, here: every task trains in its run's format, and the
    # record says which, as the local executor's does.
    formats = memory_formats(config, task, torch.device(config.device))
    layouts = with_memory_formats(layouts, plans, formats)
    check_sweep_resources(config, task, layouts, out)
    if out.exists() and not overwrite:
        raise RecordError(f"{out} already exists; pass --overwrite to replace it")
    with writer_lock(out), _connected(ray, options) as started_here:
        folder = shard_folder(out)
        shutil.rmtree(folder, ignore_errors=True)  # shards of an earlier record at this path
        folder.mkdir()
        if not started_here:  # a Ray started here for the sweep has one node: this machine
            check_workers_see(ray, folder)
        checkpoint_path(out).unlink(missing_ok=True)
        with RecordWriter.create(out, config=config.to_dict(), data=task.identity.to_dict(),
                                 runs=layouts, versions=versions(),
                                 overwrite=overwrite) as writer:
            return _run_tasks(ray, config, plans, len(plans), task, writer, out, options,
                              progress, should_stop, formats)


def resume_on_ray(
    path: str | Path,
    *,
    options: RayOptions = RayOptions(),
    device: str | None = None,
    progress: SweepProgress | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> list[RunResult]:
    """Continue every unfinished run of the record at `path` as a Ray task: from its shard's
    checkpoint when it has one, else from its start (a run the local executor had in progress
    restarts). Finished shards that were not yet copied into the record are copied."""
    path = Path(path)
    ray = import_ray()
    open_record(path)  # a missing or foreign file is named before a lock file is made for it
    with writer_lock(path):
        rec = open_record(path)
        config = RecordConfig.from_dict(rec.config)
        if device is not None:
            config = config.with_changes(device=device)
        options.validate(config)
        task = make_task(config, torch.device(config.device))
        check_resume_compatible(path, config, data_now=task.identity.to_dict(),
                                data_then=rec.data)
        all_plans = plan_runs(config)
        plans = [p for p in all_plans if not rec.runs[p.run_id].finished]
        with _connected(ray, options) as started_here:
            folder = shard_folder(path)
            folder.mkdir(exist_ok=True)
            if not started_here:
                check_workers_see(ray, folder)
            with RecordWriter.reopen(path) as writer:
                for plan in plans:
                    empty_run(writer, plan.run_id)
                writer.start_appending()
                checkpoint_path(path).unlink(missing_ok=True)  # the local executor's, if any
                return _run_tasks(ray, config, plans, len(all_plans), task, writer, path,
                                  options, progress, should_stop,
                                  recorded_memory_formats(rec, plans))


@contextlib.contextmanager
def _connected(ray, options: RayOptions):
    """Ray, connected as `options.address` says (an instance already connected in this
    process is used as it is, and left running). Yields whether it started a local Ray."""
    if ray.is_initialized():
        yield False
        return
    local = options.address == "local"
    if not local:
        _check_reachable(options.address)
    try:
        ray.init(address=options.address, num_cpus=options.num_cpus if local else None,
                 include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise RecordError(f"cannot reach a Ray cluster at --ray-address {options.address} "
                          f"({str(exc).splitlines()[0]}); start one with `ray start --head`, "
                          f"or leave --ray-address out for a local one") from None
    try:
        yield local
    finally:
        ray.shutdown()


def _check_reachable(address: str) -> None:
    """Refuse an address where no Ray cluster answers: Ray itself would retry for minutes."""
    if address == "auto":  # the cluster started on this machine, where Ray notes it
        address = os.environ.get("RAY_ADDRESS", "")
        if not address:
            try:
                address = Path("/tmp/ray/ray_current_cluster").read_text().strip()
            except OSError:
                raise RecordError("--ray-address auto: no Ray cluster was started on this "
                                  "machine; start one with `ray start --head`, or leave "
                                  "--ray-address out for a local one") from None
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except (OSError, ValueError):
        raise RecordError(f"no Ray cluster answers at {address}; start one with `ray start "
                          f"--head`, or leave --ray-address out for a local one") from None


def _can_see(probe: str, token: str) -> tuple[str, bool, str]:
    """On a worker: its host, whether it reads the driver's probe file, its landscape."""
    try:
        seen = Path(probe).read_text() == token
    except OSError:
        seen = False
    return socket.gethostname(), seen, __version__


def check_workers_see(ray, folder: Path) -> None:
    """Fail at once unless a worker on every node of the cluster reads a file the driver just
    wrote in `folder` (shards need a file system every node shares) and runs this version of
    landscape."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    token = secrets.token_hex(8)
    probe = folder / f".visible-{token}"
    _write_probe(probe, token)
    try:
        can_see = ray.remote(_can_see)
        refs = [can_see.options(num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(
                    node["NodeID"], soft=False)).remote(str(probe), token)
                for node in ray.nodes() if node["Alive"]]
        for host, seen, version in ray.get(refs, timeout=300):
            if not seen:
                raise RecordError(
                    f"a Ray worker on {host} cannot see {folder.parent}: the record's folder "
                    f"must be on a file system that every node of the cluster shares (see "
                    f"docs/scaling.md)")
            if version != __version__:
                raise RecordError(f"a Ray worker on {host} runs landscape {version}, this "
                                  f"driver {__version__}; install the same version on every "
                                  f"node")
    finally:
        probe.unlink(missing_ok=True)


def _write_probe(probe: Path, token: str) -> None:
    probe.write_text(token)


def _run_tasks(ray, config: RecordConfig, plans: list[RunPlan], n_runs: int, task: Task,
               writer: RecordWriter, out: Path, options: RayOptions,
               progress: SweepProgress | None, should_stop: Callable[[], bool],
               formats: Mapping[str, str]) -> list[RunResult]:
    """Start a task per plan, copy each finished shard into the record as it comes."""
    folder = shard_folder(out)
    stop_file = folder / STOP_FILE
    stop_file.unlink(missing_ok=True)
    train = ray.remote(_train_shard).options(
        num_cpus=options.cpus_per_run, num_gpus=options.gpus(config),
        max_retries=options.max_retries)
    threads = max(1, int(options.cpus_per_run))
    config_dict, identity = config.to_dict(), task.identity.to_dict()
    pending = {train.remote(config_dict, plan, n_runs, str(shard_path(out, plan.run_id)),
                            identity, str(stop_file), threads, formats.get(plan.model)): plan
               for plan in plans}
    results: dict[str, RunResult] = {}
    finished: dict[str, tuple[int, int, float]] = {}  # progress of the runs copied in
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
            for ref in done:
                plan = pending.pop(ref)
                result = _result_of(ray, ref, plan, options)
                if result is None:  # asked to stop before it began
                    continue
                finished[plan.run_id] = _read_progress(folder).get(plan.run_id, (
                    result.outcome.steps_done, result.outcome.steps_done, math.nan))
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
                progress.update(finished | _read_progress(folder))
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


def progress_path(shard: Path) -> Path:
    return shard.with_name(shard.name + ".progress")


class _FileProgress:
    """A run's Progress (see landscape.contracts) that the driver reads: a small file next to
    the shard, replaced at every host sync (a Ray actor for this would be one more process
    importing torch on every sweep)."""

    def __init__(self, shard: Path, total: int) -> None:
        self._path, self._total, self._done = progress_path(shard), total, 0

    def advance(self, steps: int, *, loss: float, images_per_second: float) -> None:
        self._done += steps
        tmp = self._path.with_name(self._path.name + ".tmp")
        tmp.write_text(json.dumps([self._done, self._total, loss]))
        os.replace(tmp, self._path)


def _read_progress(folder: Path) -> dict[str, tuple[int, int, float]]:
    runs = {}
    for path in folder.glob("*.h5.progress"):
        try:
            runs[path.name.removesuffix(".h5.progress")] = tuple(json.loads(path.read_text()))
        except (OSError, ValueError):  # removed as its run was copied in
            continue
    return runs


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
        return _WorkerError("ConfigError" if isinstance(exc, ConfigError) else "RecordError",
                            str(exc))


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
        layout = run_layouts(config, [plan], task.example_input())[0]
        if memory_format is not None:  # None: a run of a record made before the choice
            layout = with_memory_formats([layout], [plan], {plan.model: memory_format})[0]
        writer = RecordWriter.create(shard, config=config.to_dict(),
                                     data=task.identity.to_dict(), runs=[layout],
                                     versions=versions())

    def progress(plan: RunPlan, n_runs: int, total: int):
        return contextlib.nullcontext(_FileProgress(shard, total))

    with writer, numerics(device, config.allow_tf32):
        run_task = task if memory_format is None else task.using(FORMATS[memory_format])
        result = _train_one(config, plan, n_runs, run_task, writer,
                            device, progress, should_stop, shard, saved)
    if result.outcome.status != RunStatus.INTERRUPTED:
        checkpoint_path(shard).unlink(missing_ok=True)
    return result
