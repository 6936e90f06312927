"""The local executor: the runs of a record one after another in this process."""

from __future__ import annotations

from pathlib import Path

import torch

from landscape.config import RecordConfig
from landscape.errors import RecordError
from landscape.store import RecordWriter, RunStatus, copy_shard_into, empty_run, open_record
from landscape.store import shard_folder, shard_path
from landscape.sweep.executor import Sweep, nothing_around
from landscape.sweep.plans import RunPlan, RunResult
from landscape.sweep.run import ProgressFactory, train_one
from landscape.training.checkpoint import Checkpoint, checkpoint_path, load_checkpoint
from landscape.training.precision import numerics
from landscape.training.tuning import FORMATS


class LocalExecutor:
    """`progress(plan, n_runs, total_steps)` gives each run's Progress (a bar, say); the run
    in progress checkpoints next to the record (`RECORD.h5.ckpt`)."""

    def __init__(self, progress: ProgressFactory | None = None) -> None:
        self.progress = progress

    def check(self, config: RecordConfig) -> None:
        pass  # the entry checks everything a run in this process needs

    def session(self, path: Path, *, new: bool):
        return nothing_around()

    def continue_runs(self, writer: RecordWriter, plans: list[RunPlan], path: Path
                      ) -> tuple[list[RunPlan], dict[str, Checkpoint]]:
        """The run the record's checkpoint belongs to keeps its rows up to that checkpoint. A
        run a Ray sweep left in a shard (docs/scaling.md) is copied in: finished, it is done;
        in progress, it keeps its rows up to its shard's checkpoint and continues from it (the
        shard stays until the run has trained here, so that a second kill loses nothing).
        Every other unfinished run starts again."""
        saved = load_checkpoint(checkpoint_path(path))
        to_train, checkpoints = [], {}
        for plan in plans:
            if saved is not None and saved.run_id == plan.run_id:
                checkpoint = saved  # newer than any shard of this run: it trained here since
                drop_shard(path, plan.run_id)
            else:
                finished, checkpoint = take_shard(writer, path, plan.run_id)
                if finished:
                    continue
            start = checkpoint.loop.next_step if checkpoint is not None else 0
            writer.run(plan.run_id).truncate(start)
            to_train.append(plan)
            if checkpoint is not None:
                checkpoints[plan.run_id] = checkpoint
        return to_train, checkpoints

    def run(self, sweep: Sweep) -> list[RunResult]:
        config, resume_from, path = sweep.config, sweep.resume_from, sweep.path
        device = torch.device(config.device)
        results = []
        with numerics(device, config.allow_tf32, deterministic=config.reproducible,
                      threads=config.threads):
            for plan in sweep.plans:
                saved = resume_from.get(plan.run_id)
                fmt = sweep.formats.get(plan.run_id)
                run_task = sweep.task if fmt is None else sweep.task.using(FORMATS[fmt])
                result = train_one(config, plan, sweep.n_runs, run_task, sweep.writer, device,
                                   self.progress, sweep.should_stop, path, saved)
                results.append(result)
                if result.outcome.status == RunStatus.INTERRUPTED:
                    return results
                checkpoint_path(path).unlink(missing_ok=True)  # nothing left to continue
                drop_shard(path, plan.run_id)  # a Ray sweep's, continued here
        return results


def take_shard(writer: RecordWriter, path: Path, run_id: str
               ) -> tuple[bool, Checkpoint | None]:
    """Copy the shard a Ray sweep left for `run_id` into the record (whether it finished, and
    the shard's checkpoint if it did not). No shard, or one that cannot be read: (False,
    None), the run starts again."""
    shard = shard_path(path, run_id)
    if not shard.exists():
        return False, None
    try:
        info = open_record(shard).runs[run_id]
    except (RecordError, KeyError):  # killed as it was created: nothing in it to keep
        drop_shard(path, run_id)
        return False, None
    empty_run(writer, run_id)
    copy_shard_into(writer, shard, run_id)
    if info.finished:
        drop_shard(path, run_id)
        return True, None
    checkpoint = load_checkpoint(checkpoint_path(shard))
    if checkpoint is not None and checkpoint.run_id != run_id:
        checkpoint = None
    return False, checkpoint


def drop_shard(path: Path, run_id: str) -> None:
    """Remove a run's shard, its checkpoint and progress file, and the shards folder once it
    is empty."""
    shard = shard_path(path, run_id)
    for leftover in (shard, checkpoint_path(shard), shard.with_name(shard.name + ".progress")):
        leftover.unlink(missing_ok=True)
    folder = shard_folder(path)
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
