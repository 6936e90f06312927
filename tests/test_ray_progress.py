"""What a Ray sweep's bar says: each task's progress file carries the slow probe it is running,
and the driver's bar names it (a Hessian step takes a minute on a CPU: without it the bar looks
hung). The loop's real calls are checked through a local record (no Ray needed for them)."""

from __future__ import annotations

import contextlib
import io
import json
import math

from tqdm import tqdm

import landscape
from landscape.cli._executor import RayProgress, probes_text
from landscape.config import HessianConfig, ProbeConfig, RecordConfig
from landscape.sweep import LocalExecutor
from landscape.sweep import ray_progress
from landscape.sweep.ray_progress import (FileProgress, RunProgress, progress_path,
                                          read_progress)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_slow_probe_is_in_the_progress_file_while_it_runs(tmp_path, monkeypatch):
    clock = Clock()
    monkeypatch.setattr(ray_progress.time, "perf_counter", clock)
    shard = tmp_path / "run_a.h5"
    progress = FileProgress(shard, 40)
    progress.advance(3, loss=2.5, images_per_second=100.0)
    assert read_progress(tmp_path) == {"run_a": RunProgress(3, 40, 2.5, None)}
    progress.probing("hessian", 3)  # never ran: announced
    assert read_progress(tmp_path)["run_a"].probe == "hessian (step 3)"
    clock.now += 30.0
    progress.probing(None, 3)
    assert read_progress(tmp_path)["run_a"] == RunProgress(3, 40, 2.5, None)
    progress.probing("probe", 3)  # a fast probe: announced the first time only
    clock.now += 0.01
    progress.probing(None, 3)
    progress.probing("hessian", 4)  # slow last time: announced again
    progress.probing("probe", 4)  # (a nested fast one would not be)
    assert json.loads(progress_path(shard).read_text()) == [3, 40, 2.5, "hessian (step 4)"]


def test_a_fast_probe_writes_nothing(tmp_path, monkeypatch):
    clock = Clock()
    monkeypatch.setattr(ray_progress.time, "perf_counter", clock)
    progress = FileProgress(tmp_path / "run_a.h5", 40)
    progress.probing("probe", 0)
    clock.now += 0.01
    progress.probing(None, 0)
    progress.advance(1, loss=2.0, images_per_second=1.0)
    written = progress_path(tmp_path / "run_a.h5").stat().st_mtime_ns
    progress.probing("probe", 1)
    progress.probing(None, 1)
    assert progress_path(tmp_path / "run_a.h5").stat().st_mtime_ns == written


def test_reports_of_the_old_three_field_form_still_read(tmp_path):
    progress_path(tmp_path / "old.h5").write_text("[5, 10, 1.5]")
    progress_path(tmp_path / "torn.h5").write_text("[5, 1")  # mid-replace: skipped
    assert read_progress(tmp_path) == {"old": RunProgress(5, 10, 1.5, None)}


def test_the_ray_bar_names_the_slow_probes_running():
    runs = {"vgg_bn_lr0.1": RunProgress(40, 100, 1.2, "hessian (step 40)"),
            "vgg_lr0.1": RunProgress(100, 100, 0.9, None),
            "vgg_bn_lr0.01": RunProgress(20, 100, 2.0, "hessian (step 20)"),
            "vgg_lr0.01": RunProgress(60, 100, 1.9, "hessian (step 60)")}
    assert probes_text(runs) == ("; hessian (step 20) in vgg_bn_lr0.01, hessian (step 40) in "
                                 "vgg_bn_lr0.1, and 1 more")
    assert probes_text({"a": RunProgress(1, 2, math.nan)}) == ""
    out = io.StringIO()
    with tqdm(total=None, file=out, desc="4 runs on Ray") as bar:
        RayProgress(bar, 4).update(runs)
        bar.refresh()
        assert bar.total == 400 and bar.n == 220
    assert "3 running, 0/4 ended; hessian (step 20) in vgg_bn_lr0.01" in out.getvalue()


class Announced(FileProgress):
    """A FileProgress that keeps every probe text it wrote."""

    written: list[str | None] = []

    def _write(self) -> None:
        super()._write()
        Announced.written.append(self._probe)


def test_the_training_loop_announces_its_hessian_probe(tmp_path, cifar_dir, one_thread,
                                                      monkeypatch):
    """Through the real loop: the progress of a run with the Hessian probe hears its name at
    the probed steps (every one, with no probe counted fast here) and is cleared after."""
    Announced.written = []
    monkeypatch.setattr(ray_progress, "SLOW_PROBE_SECONDS", 0.0)

    @contextlib.contextmanager
    def progress(plan, n_runs, total):
        yield Announced(tmp_path / f"{plan.run_id}.h5", total)

    config = RecordConfig(
        models=("vgg_bn",), lrs=(0.05,), optimizer="sgd", width=0.125, batch_size=16,
        max_steps=4, data_dir=str(cifar_dir), verify_md5=False, device="cpu",
        probe=ProbeConfig(every=0), hessian=HessianConfig(every=2, iters=3, trace_samples=2))
    landscape.record(config, tmp_path / "r.h5", executor=LocalExecutor(progress))
    # Around each probe: its name, then None; between them the steps' own writes (None).
    changes = [p for i, p in enumerate(Announced.written)
               if i == 0 or p != Announced.written[i - 1]]
    assert changes == ["hessian (step 0)", None, "hessian (step 2)", None]
