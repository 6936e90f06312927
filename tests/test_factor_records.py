"""Records with axes (--vary), end to end on tiny runs: killed and resumed to the uninterrupted
record, each level's verdict equal to that of a record made with that level alone, the
ablation table against the runs' own numbers, records combined by the settings they differ in,
and a version-3 record read as it was measured and upgraded on resume.

Bit-identity on a CPU needs the same number of torch threads: the reference and the resumed
records are made on one thread, the killed process is started with one."""

import json
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

import landscape
from landscape import plot, report
from landscape.cli import main
from landscape.config import ProbeConfig, RecordConfig
from landscape.store import SCHEMA_VERSION
from landscape.sweep import record, resume
from landscape.store.schema import SCHEMA_VERSION

from conftest import assert_records_equal

AXES = ["--vary", "batch_size=16,32", "--vary", "norm_placement=conv,all"]


def axes_args(cifar_dir, out, max_steps=6):
    """Two axes (one of them only for the BN model), two models, two seeds: 12 runs."""
    return ["record", "--model", "vgg_light,vgg_light_bn", "--lrs", "0.05", "--optimizer", "sgd",
            "--width", "0.25", "--max-steps", str(max_steps), "--seeds", "0,1",
            "--probe-every", "2", "--probe-count", "3", "--flip", *AXES, "--device", "cpu",
            "--data-dir", str(cifar_dir), "--no-verify", "--flush-seconds", "0.05",
            "--checkpoint-seconds", "0.1", "-o", str(out)]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, cifar_dir, one_thread):
    out = tmp_path_factory.mktemp("axes") / "reference.h5"
    result = CliRunner().invoke(main, axes_args(cifar_dir, out, max_steps=8))
    assert result.exit_code == 0, result.output
    return landscape.open_record(out)


def assert_same_runs(a, b) -> None:
    assert_records_equal(a, b)
    for run_id, info in a.runs.items():
        assert (info.factors, info.config) == (b.runs[run_id].factors, b.runs[run_id].config)
        assert b.runs[run_id].complete


def test_the_runs_are_the_product_of_the_axes(reference):
    runs = reference.runs
    assert len(runs) == 12  # per seed: the plain model at 2 batch sizes, the BN one at 2 x 2
    info = runs["vgg_light_bn_lr0.05_batch_size=32_norm_placement=conv_s1"]
    assert info.factors == {"batch_size": 32, "norm_placement": "conv"}
    assert info.config["batch_size"] == 32 and info.config["norm_placement"] == "conv"
    assert info.config["models"] == ["vgg_light_bn"] and info.config["axes"] == {}
    assert runs["vgg_light_lr0.05_batch_size=16_s0"].factors == {"batch_size": 16}
    assert reference.config["axes"] == {"batch_size": [16, 32], "norm_placement": ["conv", "all"]}
    # 8 steps at either batch size; an epoch of the 320 images is 20 or 10 steps.
    data = reference.load("vgg_light_bn_lr0.05_batch_size=32_norm_placement=all_s0")
    assert len(data.steps.step) == 8 and data.eval.epoch[-1] == pytest.approx(0.8)
    small = reference.load("vgg_light_bn_lr0.05_batch_size=16_norm_placement=all_s0")
    assert small.eval.epoch[-1] == pytest.approx(0.4)


def test_a_killed_record_with_axes_resumes_to_the_uninterrupted_one(tmp_path, cifar_dir,
                                                                    reference, one_thread):
    out = tmp_path / "killed.h5"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "landscape",
                                *axes_args(cifar_dir, out, max_steps=8)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen, deadline = 0, time.monotonic() + 300
    while process.poll() is None and time.monotonic() < deadline:
        try:
            seen = sum(r.steps_done for r in landscape.open_record(out).runs.values())
        except landscape.RecordError:
            pass  # not created yet, or caught before its first flush
        if seen >= 36:  # in the fifth of the twelve runs
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the record finished before the kill"
    partial = landscape.open_record(out)
    assert 0 < sum(r.steps_done for r in partial.runs.values()) < 96
    resume(out)
    assert_same_runs(reference, landscape.open_record(out))


def test_each_levels_verdict_is_that_of_a_record_of_that_level_alone(tmp_path, cifar_dir,
                                                                      reference, one_thread):
    alone = tmp_path / "alone.h5"
    # batch 16 with the BN model's default placement (after every layer: "all").
    result = CliRunner().invoke(main, [a for a in axes_args(cifar_dir, alone, max_steps=8)
                                       if a not in AXES] + ["--batch-size", "16"])
    assert result.exit_code == 0, result.output
    verdicts = report.level_verdicts(report.load_runs([reference.path]))
    assert [v.levels for v in verdicts] == [
        {"batch_size": b, "norm_placement": p} for b in (16, 32) for p in ("conv", "all")]
    separate = report.verdict(report.group_by_model(report.load_runs([alone])),
                              "vgg_light", "vgg_light_bn")
    level = verdicts[1].verdict  # batch_size=16, norm_placement=all
    assert level.to_text() == separate.to_text()
    for got, want in zip(level.rows, separate.rows, strict=True):
        assert (got.per_step.ratio, got.per_step.low, got.per_step.high) == \
            (want.per_step.ratio, want.per_step.low, want.per_step.high)
        assert got.per_step.n_seeds == 2
    # And the other placement's verdict is not the same numbers (the cells do differ).
    assert verdicts[0].verdict.rows[0].per_step.ratio != level.rows[0].per_step.ratio


def test_the_ablation_table_holds_each_groups_medians_over_seeds(reference):
    runs = report.load_runs([reference.path])
    rows = report.ablation_rows(runs)
    assert [(r["model"], r["batch_size"], r["norm_placement"]) for r in rows] == [
        ("vgg_light", 16, None), ("vgg_light_bn", 16, "conv"), ("vgg_light_bn", 16, "all"),
        ("vgg_light", 32, None), ("vgg_light_bn", 32, "conv"), ("vgg_light_bn", 32, "all")]
    group = [r for r in runs if r.model == "vgg_light_bn" and r.factors == {
        "batch_size": 32, "norm_placement": "conv"}]
    row = rows[4]
    assert row["seeds"] == (0, 1)
    finals = [r.data.eval.test_acc[-1] for r in group]
    assert row["final_test_acc"] == pytest.approx(np.median(finals))
    assert row["final_test_acc_low"] <= row["final_test_acc"] <= row["final_test_acc_high"]
    assert row["best_test_acc"] == pytest.approx(np.median([r.data.eval.test_acc.max()
                                                            for r in group]))
    # With 2 seeds (no bootstrap) a metric's cell is the median of the seeds' own medians, so
    # that it lies inside the per-seed range beside it.
    betas = [np.median(r.data.probe.beta.astype(np.float64)) for r in group]
    assert row["beta"] == pytest.approx(np.median(betas))
    assert row["beta_low"] == pytest.approx(min(betas))
    table = report.ablation_array(rows)
    assert table["batch_size"].dtype == np.float64 and np.isnan(table["norm_placement"] == "")\
        .sum() == 0 and list(table["norm_placement"]) == ["", "conv", "all", "", "conv", "all"]
    np.testing.assert_allclose(table["beta"], [r["beta"] for r in rows])
    frame = report.ablation_frame(rows)
    assert list(frame["model"]) == [r["model"] for r in rows] and len(frame.columns) == len(row)
    text = report.factor_summary(runs)
    assert "Axes: batch_size = 16, 32; norm_placement = conv, all (vgg_light_bn only" in text
    assert "At batch_size=32, norm_placement=conv:" in text and "Ablation table" in text


def test_records_that_differ_in_a_setting_combine_as_levels(tmp_path, cifar_dir, one_thread):
    base = dict(models=("vgg_light", "vgg_light_bn"), lrs=(0.05,), optimizer="sgd",
                width=0.25, max_steps=4, batch_size=32, data_dir=str(cifar_dir),
                verify_md5=False, probe=ProbeConfig(every=2, count=3), device="cpu")
    paths = [tmp_path / "plain.h5", tmp_path / "decay.h5"]
    record(RecordConfig(**base), paths[0])
    record(RecordConfig(**base, momentum=0.9), paths[1])
    runs = report.load_runs(paths)
    # The same run ids in both: qualified by record; the setting they differ in is a factor.
    assert [r.run_id for r in runs] == ["plain:vgg_light_lr0.05", "plain:vgg_light_bn_lr0.05",
                                        "decay:vgg_light_lr0.05", "decay:vgg_light_bn_lr0.05"]
    assert [r.factors for r in runs] == [{"momentum": 0.0}] * 2 + [{"momentum": 0.9}] * 2
    verdicts = report.level_verdicts(runs)
    assert [v.levels for v in verdicts] == [{"momentum": 0.0}, {"momentum": 0.9}]
    for v, path in zip(verdicts, paths):
        alone = report.verdict(report.group_by_model(report.load_runs([path])),
                               "vgg_light", "vgg_light_bn")
        assert v.verdict.to_text() == alone.to_text()
    figures = plot.all_figures(runs)
    titles = [ax.get_title() for ax in figures["loss_landscape"].axes]
    assert titles == ["momentum=0", "momentum=0.9"]


def _as_version_3(path):
    """Rewrite a fresh record as version 3 wrote it: runs without factors and config."""
    with h5py.File(path, "r+") as f:
        f.attrs["schema_version"] = 3
        for run in f["runs"].values():
            del run.attrs["factors"], run.attrs["config"]
        last = f["runs"][json.loads(f.attrs["run_ids"])[-1]]
        last["status"][()] = np.bytes_("interrupted")
        last["stop_reason"][()] = np.bytes_("")


def test_a_version_3_record_reads_as_measured_and_resumes_into_version_4(tmp_path, cifar_dir,
                                                                         one_thread):
    config = RecordConfig(models=("vgg_light", "vgg_light_bn"), lrs=(0.05,), optimizer="sgd",
                          width=0.25, max_steps=3, batch_size=32, data_dir=str(cifar_dir),
                          verify_md5=False, device="cpu")
    path = tmp_path / "r.h5"
    record(config, path)
    fresh = landscape.open_record(path)
    _as_version_3(path)
    old = landscape.open_record(path)
    assert old.schema_version == 3
    for run_id, info in old.runs.items():
        assert info.factors == {} and info.config == fresh.runs[run_id].config
        assert info.config["models"] == [info.model] and info.config["lrs"] == [info.lr]
    assert [c.levels for c in report.factor_cells(report.load_runs([path]))] == [{}]
    resume(path)  # the interrupted run restarts and the record is upgraded
    new = landscape.open_record(path)
    assert new.schema_version == SCHEMA_VERSION and all(r.complete for r in new.runs.values())
    for run_id, info in new.runs.items():
        assert (info.factors, info.config) == ({}, fresh.runs[run_id].config)
        assert "config" in info.attrs  # stored again, not derived
    assert_records_equal(new, fresh)
