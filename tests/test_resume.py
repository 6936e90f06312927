"""Interrupted records: stopping cleanly, resuming exactly, and refusing to mix options."""

import numpy as np
import pytest
from click.testing import CliRunner

import landscape
from landscape.training.checkpoint import checkpoint_path
from landscape.cli import main
from landscape.config import ProbeConfig, RecordConfig
from landscape.sweep import record, resume

from conftest import assert_records_equal


def busy_config(cifar_dir, **changes) -> RecordConfig:
    """Everything that carries state across steps: dropout and augmentation (random state),
    Adam (optimizer state), an epoch boundary (data order), every probe, taps, evaluations;
    and a learning-rate schedule (the step's lr, and the probe grid relative to it), random
    erasing, label smoothing, penalties and a validation split."""
    values = dict(
        models=("vgg_bn", "vgg_dropout"), lrs=(1e-3,), optimizer="adam", width=0.125,
        batch_size=32, max_steps=14, crop_padding=2, flip=True, device="cpu",
        data_dir=str(cifar_dir), verify_md5=False, eval_every=4,
        schedule="cosine", lr_min=1e-5, erase_prob=0.5, label_smoothing=0.1, l1=1e-5, l2=1e-4,
        val_split=0.1,
        probe=ProbeConfig(every=3, count=3), ics_every=4, ics_layers=("features.stage2.conv1",),
        activation_every=5, activation_layers=("features.stage3.norm1",),
        checkpoint_seconds=1e-9,  # a checkpoint at every host sync
    )
    values.update(changes)
    return RecordConfig(**values)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, cifar_dir):
    path = tmp_path_factory.mktemp("ref") / "ref.h5"
    record(busy_config(cifar_dir), path)
    return landscape.open_record(path)


class StopAfter:
    """should_stop() that says yes after `n` steps of the whole sweep."""

    def __init__(self, n: int) -> None:
        self.n, self.calls = n, 0

    def __call__(self) -> bool:
        self.calls += 1
        return self.calls >= self.n


@pytest.mark.parametrize("stop_after", [1, 7, 14, 15, 20])
def test_stopped_and_resumed_record_equals_an_uninterrupted_one(tmp_path, cifar_dir, reference,
                                                                 stop_after):
    """Stop after the 1st step, mid-run, at the end of the first run, at the first step of the
    second run and mid second run; each time the resumed record is identical, row for row."""
    path = tmp_path / "r.h5"
    results = record(busy_config(cifar_dir), path, should_stop=StopAfter(stop_after))
    stopped = results[-1]
    rec = landscape.open_record(path)
    if stop_after == 14:
        # The first run's last step: the run is complete, the sweep goes on to the next one.
        assert [r.outcome.status for r in results][0] == "complete"
    if stopped.outcome.status == "interrupted":
        info = rec.runs[stopped.plan.run_id]
        assert info.status == "interrupted" and not info.finished
        assert checkpoint_path(path).exists()
        assert len(rec.load(stopped.plan.run_id).steps.step) == info.steps_done
    resume(path)
    assert_records_equal(landscape.open_record(path), reference)
    assert all(r.status == "complete" for r in landscape.open_record(path).runs.values())
    assert not checkpoint_path(path).exists()


def test_resume_without_checkpoint_restarts_the_run(tmp_path, cifar_dir, reference):
    path = tmp_path / "r.h5"
    record(busy_config(cifar_dir), path, should_stop=StopAfter(20))
    checkpoint_path(path).unlink()
    resume(path)
    assert_records_equal(landscape.open_record(path), reference)


def test_resume_refuses_other_options(tmp_path, cifar_dir):
    path = tmp_path / "r.h5"
    record(busy_config(cifar_dir, models=("vgg",), max_steps=2), path)
    result = CliRunner().invoke(main, ["record", "--resume", str(path), "--lrs", "0.5",
                                       "--batch-size", "16"])
    assert result.exit_code == 1
    assert "--resume continues" in result.output
    assert "lrs ((0.5,) given, (0.001,) recorded)" in result.output
    assert "batch_size (16 given, 32 recorded)" in result.output


def test_resume_refuses_other_data(tmp_path, cifar_dir, embedded):
    from conftest import write_cifar_folder
    other = write_cifar_folder(tmp_path / "other", embedded, n_train=352)
    path = tmp_path / "r.h5"
    record(busy_config(other, models=("vgg",), max_steps=2), path, should_stop=StopAfter(1))
    (other / "cifar-10-batches-py" / "data_batch_1").write_bytes(
        (cifar_dir / "cifar-10-batches-py" / "data_batch_1").read_bytes())
    with pytest.raises(landscape.RecordError, match="data found now differ"):
        resume(path)


def test_resume_of_a_complete_record_does_nothing(tmp_path, cifar_dir):
    path = tmp_path / "r.h5"
    record(busy_config(cifar_dir, models=("vgg",), max_steps=2), path)
    before = landscape.open_record(path)
    assert resume(path) == []
    assert_records_equal(landscape.open_record(path), before)


def test_cli_stop_message_and_exit_code(tmp_path, cifar_dir, monkeypatch):
    """What the user sees after Ctrl-C: a valid record, exit code 130 and how to resume."""
    import importlib
    from contextlib import contextmanager

    cli_record = importlib.import_module("landscape.cli.record")  # the module, not the command

    @contextmanager
    def stop_at_once():
        yield lambda: True

    monkeypatch.setattr(cli_record, "graceful_stop", stop_at_once)
    out = tmp_path / "r.h5"
    result = CliRunner().invoke(main, ["record", "--model", "vgg", "--lrs", "0.001", "--width",
                                       "0.125", "--batch-size", "32", "--max-steps", "5",
                                       "--device", "cpu", "--data-dir", str(cifar_dir),
                                       "--no-verify", "-o", str(out)])
    assert result.exit_code == 130
    assert f"Continue with: landscape record --resume {out}" in result.output
    info = CliRunner().invoke(main, ["info", str(out)])
    assert "interrupted" in info.output and "Incomplete runs: vgg_lr0.001" in info.output
    monkeypatch.undo()
    resumed = CliRunner().invoke(main, ["record", "--resume", str(out)])
    assert resumed.exit_code == 0, resumed.output
    assert landscape.open_record(out).runs["vgg_lr0.001"].status == "complete"


def test_a_full_disk_is_refused_before_writing_and_resume_completes(tmp_path, cifar_dir,
                                                                    reference, monkeypatch):
    """When the disk is about to fill up, the recorder refuses to write (one clear line), the
    record stays as it was at its last flush, and once there is room, --resume completes it."""
    import landscape.training.recorder as recorder_module

    path = tmp_path / "r.h5"
    calls = {"n": 0}

    def filling_disk(where):
        calls["n"] += 1
        return 10 << 30 if calls["n"] < 4 else 1 << 20  # 10 GiB, then 1 MiB free

    monkeypatch.setattr(recorder_module, "free_bytes", filling_disk)
    with pytest.raises(landscape.RecordError, match="not enough free space for .*r.h5 "
                                                    r"\(1 MiB free.*--resume"):
        record(busy_config(cifar_dir), path)
    partial = landscape.open_record(path)
    # The refused run says so (issue 24: it used to stay 'running').
    assert any(r.status == "interrupted" for r in partial.runs.values())
    assert not any(r.status == "running" for r in partial.runs.values())
    monkeypatch.undo()
    resume(path)
    assert_records_equal(landscape.open_record(path), reference)
