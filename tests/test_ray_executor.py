"""Sweeps on Ray (a real local Ray with two CPUs, started once for this module): the record
equals the local executor's run for run, a worker killed mid-run is retried from its shard's
checkpoint, a stopped Ray sweep resumes, and the start-up checks say what is wrong in one line.

Bit-identity on a CPU needs the same number of torch threads per run: the Ray tasks use the
driver's count (one here, in the tests that record the local reference with one thread)."""

import contextlib
import json
import os
import shutil
import signal
import sys

import h5py
import numpy as np
import pytest
import ray
import torch
from click.testing import CliRunner

import landscape
from landscape.store import RecordWriter
from landscape.sweep import plan_runs
from landscape.training.checkpoint import checkpoint_path, load_checkpoint
from landscape.cli import main
from landscape.config import ProbeConfig, RecordConfig
from landscape.errors import RecordError
from landscape.sweep import RayExecutor, RayOptions
from landscape.store import shard_folder
from landscape.sweep import record, resume
from landscape.store.lock import lock_path

from conftest import assert_records_equal


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    yield
    ray.shutdown()


def sweep_config(cifar_dir, **changes) -> RecordConfig:
    """Four runs with state across steps: dropout, Adam, augmentation, an epoch boundary,
    probes, taps, kept weights and evaluations; a checkpoint at every host sync."""
    values = dict(
        models=("vgg_bn", "vgg_dropout"), lrs=(1e-3, 3e-3), optimizer="adam", width=0.125,
        batch_size=32, max_steps=12, crop_padding=2, flip=True, device="cpu",
        data_dir=str(cifar_dir), verify_md5=False, eval_every=4,
        probe=ProbeConfig(every=3, count=3), save_weights_every=6, checkpoint_seconds=1e-9,
    )
    values.update(changes)
    return RecordConfig(**values)


def assert_same_files(a, b) -> None:
    """Every group, dataset and attribute under /runs of two record files is identical (a
    run's `seconds`, its wall time, aside), whatever tables the record has."""
    def items(file):
        found = {}
        file["runs"].visititems(lambda name, obj: found.setdefault(name, obj) and None)
        return found

    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        for key in ("format", "schema_version", "config", "data", "run_ids"):
            assert fa.attrs[key] == fb.attrs[key], key
        ia, ib = items(fa), items(fb)
        assert list(ia) == list(ib)
        for name, obj in ia.items():
            other = ib[name]
            assert sorted(obj.attrs) == sorted(other.attrs), name
            for key in obj.attrs:
                np.testing.assert_array_equal(obj.attrs[key], other.attrs[key], err_msg=name)
            if isinstance(obj, h5py.Dataset) and not name.endswith("/seconds"):
                assert obj.dtype == other.dtype, name
                np.testing.assert_array_equal(obj[()], other[()], err_msg=name)


def assert_same_record(a, b) -> None:
    """Every array, the header and every run's attributes and state are identical."""
    assert_same_files(a.path, b.path)
    assert_records_equal(a, b)
    assert (a.config, a.data, a.schema_version) == (b.config, b.data, b.schema_version)
    for run_id, info in a.runs.items():
        other = b.runs[run_id]
        assert info.attrs == other.attrs
        assert (info.status, info.steps_done, info.stop_reason, info.diverged_step) == \
            (other.status, other.steps_done, other.stop_reason, other.diverged_step)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, cifar_dir, one_thread):
    """The local executor's record of sweep_config, on one thread like each Ray task."""
    path = tmp_path_factory.mktemp("local") / "local.h5"
    record(sweep_config(cifar_dir), path)
    return landscape.open_record(path)


def test_ray_sweep_equals_the_local_record(tmp_path, cifar_dir, reference, local_ray):
    out = tmp_path / "ray.h5"
    results = record(sweep_config(cifar_dir), out,
                     executor=RayExecutor(RayOptions(cpus_per_run=1)))
    assert [r.plan.run_id for r in results] == list(reference.runs)
    assert all(r.outcome.status == "complete" for r in results)
    assert_same_record(landscape.open_record(out), reference)
    # The shards were copied in and removed; no lock is left.
    assert not shard_folder(out).exists() and not lock_path(out).exists()


class KillOneWorker:
    """Watches a sweep's shards and SIGKILLs the worker process of the first run that has
    checkpointed (its PID is in the shard's lock file), once."""

    def __init__(self, out) -> None:
        self.out, self.killed = out, None

    def __call__(self) -> bool:
        if self.killed is None:
            for ckpt in sorted(shard_folder(self.out).glob("*.h5.ckpt")):
                shard = ckpt.with_suffix("")
                try:
                    pid = json.loads(lock_path(shard).read_text())["pid"]
                except (OSError, ValueError, KeyError):
                    continue
                os.kill(pid, signal.SIGKILL)
                self.killed = (shard.stem, pid)
                break
        return False  # never asks the sweep to stop


def uninterrupted(tmp_path, cifar_dir):
    """The 120-step vgg_bn sweep of the kill, stop and executor-switching tests, and its
    uninterrupted local record (what each of their records must equal)."""
    config = sweep_config(cifar_dir, models=("vgg_bn",), max_steps=120)
    local = tmp_path / "local.h5"
    record(config, local)
    return config, local


def test_a_killed_worker_is_retried_and_the_record_is_identical(tmp_path, cifar_dir,
                                                                 tmp_path_factory, one_thread,
                                                                 local_ray):
    """A worker killed mid-run (SIGKILL: no chance to clean up) is retried by Ray, continues
    from its shard's checkpoint, and the record equals the uninterrupted local one."""
    config, local = uninterrupted(tmp_path, cifar_dir)
    out = tmp_path / "ray.h5"
    killer = KillOneWorker(out)
    results = record(config, out, executor=RayExecutor(RayOptions(cpus_per_run=1)),
                     should_stop=killer)
    assert killer.killed is not None, "no worker was killed: the test did not test anything"
    run_id, pid = killer.killed
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # that process is gone
    assert all(r.outcome.status == "complete" for r in results)
    assert_same_record(landscape.open_record(out), landscape.open_record(local))


class StopWhenCheckpointed:
    """should_stop() that says yes once every run has a checkpoint in its shard."""

    def __init__(self, out, n_runs) -> None:
        self.out, self.n_runs = out, n_runs

    def __call__(self) -> bool:
        return len(list(shard_folder(self.out).glob("*.h5.ckpt"))) >= self.n_runs


def test_a_stopped_ray_sweep_resumes_to_the_same_record(tmp_path, cifar_dir, one_thread,
                                                        local_ray):
    config, local = uninterrupted(tmp_path, cifar_dir)
    out = tmp_path / "ray.h5"
    results = record(config, out, executor=RayExecutor(RayOptions(cpus_per_run=1)),
                     should_stop=StopWhenCheckpointed(out, 2))
    stopped = [r for r in results if r.outcome.status == "interrupted"]
    assert stopped, [r.outcome for r in results]
    rec = landscape.open_record(out)
    for r in stopped:  # not in the record yet: in its shard, with a checkpoint
        assert rec.runs[r.plan.run_id].status == "pending"
        shard = shard_folder(out) / f"{r.plan.run_id}.h5"
        assert checkpoint_path(shard).exists()
        assert 0 < r.outcome.steps_done < 120
    info = CliRunner().invoke(main, ["info", str(out)])
    assert "Shards in progress" in info.output and "interrupted" in info.output
    resumed = resume(out, executor=RayExecutor(RayOptions(cpus_per_run=1)))
    assert {r.plan.run_id for r in resumed} == {r.plan.run_id for r in stopped}
    assert_same_record(landscape.open_record(out), landscape.open_record(local))
    assert not shard_folder(out).exists()


def test_a_worker_that_cannot_see_the_folder_stops_the_sweep(tmp_path, cifar_dir, local_ray,
                                                             monkeypatch):
    """The driver writes a file into the shards folder that every node must read back; here it
    writes other content than it tells the workers to expect, as a node that sees another
    file system would read."""
    import landscape.sweep.ray_cluster as ray_cluster

    monkeypatch.setattr(ray_cluster, "_write_probe", lambda probe, token: probe.write_text("x"))
    out = tmp_path / "r.h5"
    with pytest.raises(RecordError, match=r"a Ray worker on .* cannot see .*: the record's "
                                          r"folder must be on a file system that every node"):
        record(sweep_config(cifar_dir), out, executor=RayExecutor())
    assert not out.exists()


def test_cli_ray_sweep_and_its_options(tmp_path, cifar_dir, local_ray):
    out = tmp_path / "r.h5"
    args = ["record", "--model", "vgg", "--lrs", "0.001,0.01", "--width", "0.125",
            "--batch-size", "32", "--max-steps", "3", "--device", "cpu", "--data-dir",
            str(cifar_dir), "--no-verify", "-o", str(out)]
    result = CliRunner().invoke(main, [*args, "--executor", "ray", "--cpus-per-run", "1"])
    assert result.exit_code == 0, result.output
    assert "vgg_lr0.01: complete, 3 steps" in result.output
    assert [r.status for r in landscape.open_record(out).runs.values()] == ["complete"] * 2
    refused = CliRunner().invoke(main, [*args, "--overwrite", "--gpus-per-run", "0.5"])
    assert refused.exit_code == 1
    assert refused.output.strip().splitlines()[-1] == \
        "Error: --gpus-per-run applies to --executor ray"


def test_without_ray_the_error_says_how_to_install_it(tmp_path, cifar_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    result = CliRunner().invoke(main, ["record", "--executor", "ray", "--model", "vgg",
                                       "--lrs", "0.01", "--device", "cpu",
                                       "-o", str(tmp_path / "r.h5")])
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert errors == ["Error: --executor ray needs Ray, which is not installed: "
                      "pip install bn-landscape[ray]"]
    assert "Traceback" not in result.output and not (tmp_path / "r.h5").exists()


def test_a_record_with_axes_on_ray_equals_the_local_one(tmp_path, cifar_dir, one_thread,
                                                        local_ray):
    """Two axes (batch size for both models, BatchNorm's placement for the BN one), two
    models, two seeds: the Ray record equals the local one, file for file."""
    config = sweep_config(cifar_dir, models=("vgg_light", "vgg_light_bn"), lrs=(1e-3,),
                          seeds=(0, 1), max_steps=5,
                          axes={"batch_size": (16, 32), "norm_placement": ("conv", "all")})
    local = tmp_path / "local.h5"
    record(config, local)
    out = tmp_path / "ray.h5"
    results = record(config, out, executor=RayExecutor(RayOptions(cpus_per_run=1)))
    assert len(results) == 12 and all(r.outcome.status == "complete" for r in results)
    assert_same_record(landscape.open_record(out), landscape.open_record(local))


def test_ray_runs_default_to_the_local_thread_count(tmp_path, cifar_dir, local_ray):
    """A CPU's float reductions depend on the thread count: at two torch threads in the driver
    the Ray record equals a local two-thread record (not a one-thread one, which differs),
    although each run reserves one CPU."""
    config = sweep_config(cifar_dir, models=("vgg_bn",), lrs=(0.01,), optimizer="sgd",
                          max_steps=8)
    saved = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        record(config, tmp_path / "local2.h5")
        record(config, tmp_path / "ray.h5", executor=RayExecutor(RayOptions(cpus_per_run=1)))
        torch.set_num_threads(1)
        record(config, tmp_path / "local1.h5")
    finally:
        torch.set_num_threads(saved)
    local1, local2 = (landscape.open_record(tmp_path / f"local{n}.h5") for n in (1, 2))
    assert not np.array_equal(local1.load("vgg_bn_lr0.01").steps.loss,
                              local2.load("vgg_bn_lr0.01").steps.loss)  # the test can fail
    assert_same_record(landscape.open_record(tmp_path / "ray.h5"), local2)


class FirstAdvance:
    """A local progress factory that notes each run's first report: a run continued from a
    checkpoint reports the steps it continues from before it trains."""

    def __init__(self) -> None:
        self.first: dict[str, int] = {}

    def __call__(self, plan, n_runs, total):
        notes = self

        class Reporter:
            def advance(self, steps, *, loss, images_per_second):
                notes.first.setdefault(plan.run_id, steps)

        return contextlib.nullcontext(Reporter())


def test_a_stopped_ray_sweep_resumed_locally_continues_its_shards(tmp_path, cifar_dir,
                                                                  one_thread, local_ray):
    config, local = uninterrupted(tmp_path, cifar_dir)
    out = tmp_path / "ray.h5"
    results = record(config, out, executor=RayExecutor(RayOptions(cpus_per_run=1)),
                     should_stop=StopWhenCheckpointed(out, 2))
    stopped = {r.plan.run_id for r in results if r.outcome.status == "interrupted"}
    assert stopped, [r.outcome for r in results]
    starts = {run_id: load_checkpoint(checkpoint_path(shard_folder(out) / f"{run_id}.h5"))
              .loop.next_step for run_id in stopped}
    progress = FirstAdvance()
    resumed = resume(out, progress=progress)  # the local executor
    assert {r.plan.run_id for r in resumed} == stopped
    assert {run_id: progress.first[run_id] for run_id in stopped} == starts  # continued
    assert_same_record(landscape.open_record(out), landscape.open_record(local))
    assert not shard_folder(out).exists()


def test_a_stopped_local_record_resumed_on_ray_continues_its_run(tmp_path, cifar_dir,
                                                                 one_thread, local_ray):
    config, local = uninterrupted(tmp_path, cifar_dir)
    out = tmp_path / "stopped.h5"
    results = record(config, out, should_stop=lambda: checkpoint_path(out).exists())
    assert [r.outcome.status for r in results] == ["interrupted"]
    saved = load_checkpoint(checkpoint_path(out))
    # What the Ray executor makes of it, on a copy: the run in progress becomes a shard with
    # its rows up to the checkpoint, and the checkpoint that shard's.
    copy = tmp_path / "copy.h5"
    shutil.copy(out, copy)
    shutil.copy(checkpoint_path(out), checkpoint_path(copy))
    shard_folder(copy).mkdir()
    unfinished = [p for p in plan_runs(config)
                  if not landscape.open_record(copy).runs[p.run_id].finished]
    with RecordWriter.reopen(copy) as writer:
        RayExecutor().continue_runs(writer, unfinished, copy)
    shard = shard_folder(copy) / f"{saved.run_id}.h5"
    assert len(landscape.open_record(shard).load(saved.run_id).steps.step) == \
        saved.loop.next_step > 0
    assert load_checkpoint(checkpoint_path(shard)).loop.next_step == saved.loop.next_step
    assert not checkpoint_path(copy).exists()
    # And the whole resume on Ray completes the record as if it had never stopped.
    resume(out, executor=RayExecutor(RayOptions(cpus_per_run=1)))
    assert_same_record(landscape.open_record(out), landscape.open_record(local))
    assert not shard_folder(out).exists() and not checkpoint_path(out).exists()
