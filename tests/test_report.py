"""landscape.report against independent numpy computations on real tiny records."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from landscape import report
from landscape.config import ProbeConfig, RecordConfig
from landscape.errors import ConfigError, RecordError
from landscape.sweep import record

TINY = dict(width=0.125, subset=256, batch_size=32, max_steps=6)
TAP = "classifier.fc3.weight"


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    paths = {
        # vgg and vgg_bn at two lrs, probed every 2 steps, default tap.
        "probed": RecordConfig(models=("vgg", "vgg_bn"), lrs=(1e-3, 5e-4),
                               probe=ProbeConfig(every=2), **TINY),
        # No probe, no taps, one run of a BN model.
        "plain": RecordConfig(models=("vgg_bn",), lrs=(2e-3,), taps=(), **TINY),
        # Plain SGD at a huge lr: the loss is non-finite within a few steps.
        "diverged": RecordConfig(models=("vgg",), lrs=(1e4,), optimizer="sgd",
                                 probe=ProbeConfig(every=2), **TINY),
    }
    for name, config in paths.items():
        record(config, root / f"{name}.h5")
    return {name: root / f"{name}.h5" for name in paths}


@pytest.fixture(scope="module")
def probed(records):
    return report.load_runs([records["probed"]])


@pytest.fixture(scope="module")
def diverged(records):
    return report.load_runs([records["diverged"]])


def by_id(runs):
    return {r.run_id: r for r in runs}


# ---------------------------------------------------------------------------------------------
# Loading


def test_runs_of_several_records_are_combined_and_grouped(records):
    runs = report.load_runs([records["probed"], records["diverged"]])
    assert [r.run_id for r in runs] == ["vgg_lr0.001", "vgg_lr0.0005", "vgg_bn_lr0.001",
                                        "vgg_bn_lr0.0005", "vgg_lr10000"]
    groups = report.group_by_model(runs)
    assert list(groups) == ["vgg", "vgg_bn"]
    assert [r.lr for r in groups["vgg"]] == [5e-4, 1e-3, 1e4]  # ascending lr
    assert runs[-1].source == records["diverged"]


def test_clashing_run_ids_are_qualified_by_record(records, tmp_path):
    copy = tmp_path / "copy.h5"
    shutil.copy(records["plain"], copy)
    runs = report.load_runs([records["plain"], copy])
    # The same settings twice: the record is the factor that tells the runs apart.
    assert [r.run_id for r in runs] == ["plain:vgg_bn_lr0.002", "copy:vgg_bn_lr0.002"]
    assert [dict(r.factors) for r in runs] == [{"record": "plain"}, {"record": "copy"}]
    assert [len(c.runs) for c in report.factor_cells(runs)] == [1, 1]
    np.testing.assert_array_equal(runs[0].data.steps.loss, runs[1].data.steps.loss)
    with pytest.raises(RecordError, match="given twice"):
        report.load_runs([records["plain"], records["plain"]])


def test_unreadable_inputs_are_record_errors(tmp_path):
    with pytest.raises(RecordError, match="does not exist"):
        report.load_runs([tmp_path / "missing.h5"])
    text = tmp_path / "notes.h5"
    text.write_text("not hdf5")
    with pytest.raises(RecordError, match="not an HDF5 file"):
        report.load_runs([text])
    with pytest.raises(ConfigError, match="no record"):
        report.load_runs([])


def test_record_differences_name_the_setting_and_files(records):
    runs = report.load_runs([records["probed"], records["diverged"]])
    assert report.record_differences(runs) == ["optimizer: adam (probed.h5), sgd (diverged.h5)"]
    assert report.record_differences(report.load_runs([records["probed"]])) == []


def test_bn_pairs():
    assert report.bn_pairs(["vgg", "vgg_bn", "vgg_light", "vgg_dropout"]) == [("vgg", "vgg_bn")]
    assert report.bn_pairs(["vgg_bn"]) == []


# ---------------------------------------------------------------------------------------------
# Loss envelope


def test_loss_envelope_is_min_max_of_the_recorded_losses(probed):
    envs = report.loss_envelopes(report.group_by_model(probed))
    assert list(envs) == ["vgg", "vgg_bn"]
    for model, series in envs.items():
        runs = [r for r in probed if r.model == model]
        losses = np.stack([r.data.steps.loss.astype(np.float64) for r in runs])  # (runs, steps)
        np.testing.assert_array_equal(series.envelope.step, np.arange(6))
        np.testing.assert_array_equal(series.envelope.low, losses.min(axis=0))
        np.testing.assert_array_equal(series.envelope.high, losses.max(axis=0))
        assert series.lrs == (5e-4, 1e-3) and series.smooth is None
        assert series.quantity == "training-batch loss"


def test_smoothed_envelope_smooths_each_run_before_min_max(probed):
    series = report.loss_envelopes(report.group_by_model(probed), smooth=3)["vgg"]
    runs = [r for r in probed if r.model == "vgg"]
    smoothed = np.stack([np.convolve(r.data.steps.loss.astype(np.float64), np.ones(3) / 3,
                                     mode="valid") for r in runs])
    np.testing.assert_array_equal(series.envelope.step, np.arange(2, 6))  # trailing window
    np.testing.assert_allclose(series.envelope.low, smoothed.min(axis=0), rtol=1e-12)
    np.testing.assert_allclose(series.envelope.high, smoothed.max(axis=0), rtol=1e-12)
    assert series.smooth == 3


def test_smoothing_window_longer_than_every_run_is_an_error(probed):
    with pytest.raises(ConfigError, match="longer than every run"):
        report.loss_envelopes(report.group_by_model(probed), smooth=7)
    with pytest.raises(ConfigError, match="integer >= 1"):
        report.loss_envelopes(report.group_by_model(probed), smooth=0)


# ---------------------------------------------------------------------------------------------
# The paper's probe


def test_probe_bands_are_min_max_of_the_recorded_probe(probed):
    for run in probed:
        bands = report.probe_bands(run)
        p = run.data.probe
        np.testing.assert_array_equal(bands.step, [0, 2, 4])
        np.testing.assert_array_equal(bands.loss_low, p.loss.min(axis=1))
        np.testing.assert_array_equal(bands.loss_high, p.loss.max(axis=1))
        np.testing.assert_array_equal(bands.grad_diff_low, p.grad_diff.min(axis=1))
        np.testing.assert_array_equal(bands.grad_diff_high, p.grad_diff.max(axis=1))
        # These Adam runs are probed along the update: β is over the distance c‖d_t‖ moved.
        assert report.probe_direction(run) == "update"
        beta = (p.grad_diff / p.distance).max(axis=1)
        np.testing.assert_allclose(bands.beta, beta, rtol=1e-6)
        np.testing.assert_allclose(bands.beta, p.beta, rtol=1e-5)  # what the probe recorded
        # and the distance is c‖d_t‖: c = η / lr times the step's update norm
        update = run.data.steps.update_norm[p.step]
        np.testing.assert_allclose(p.distance, p.eta / run.lr * update[:, None], rtol=1e-4)


def test_unprobed_run_has_no_bands_and_no_paper_data(records):
    runs = report.load_runs([records["plain"]])
    assert report.probe_bands(runs[0]) is None
    assert report.paper_data(report.group_by_model(runs)) == []


def test_paper_data_one_per_lr_with_every_probed_model(probed):
    data = report.paper_data(report.group_by_model(probed))
    assert [d.lr for d in data] == [5e-4, 1e-3]
    assert list(data[1].bands) == ["vgg", "vgg_bn"]
    assert data[1].runs["vgg_bn"].run_id == "vgg_bn_lr0.001"
    assert data[0].eta_description() == "η ∈ [0.5, 4]×lr (8 values, linear)"
    eta = data[1].runs["vgg"].data.probe.eta
    np.testing.assert_allclose(eta[0], np.linspace(0.5e-3, 4e-3, 8))


# ---------------------------------------------------------------------------------------------
# Trajectory quantities


def test_tap_gradient_change_is_the_norm_of_consecutive_recorded_grads(probed):
    assert report.trajectory_source(probed) == TAP
    for run in probed:
        tap = run.tap(TAP)
        g = tap.grad.astype(np.float64).reshape(len(tap.step), -1)
        dw = tap.weight_delta.astype(np.float64).reshape(len(tap.step), -1)
        expected = np.linalg.norm(g[1:] - g[:-1], axis=1)
        step, values = report.run_gradient_change(run, TAP)
        np.testing.assert_array_equal(step, np.arange(5))
        np.testing.assert_allclose(values, expected, rtol=1e-12)
        step, beta = report.run_trajectory_beta(run, TAP)
        np.testing.assert_allclose(beta, expected / np.linalg.norm(dw[:-1], axis=1), rtol=1e-12)


def test_all_parameter_versions_use_the_recorded_norms(probed):
    for run in probed:
        s = run.data.steps
        step, change = report.run_gradient_change(run, None)
        np.testing.assert_array_equal(step, np.arange(5))
        # grad_change[t] is ‖g_t − g_{t−1}‖: the value at t is the one recorded at t + 1.
        np.testing.assert_array_equal(change, s.grad_change[1:].astype(np.float64))
        step, beta = report.run_trajectory_beta(run, None)
        np.testing.assert_allclose(beta, s.grad_change[1:] / s.update_norm[:-1].astype(float),
                                   rtol=1e-12)


def test_gradient_change_envelopes_bracket_every_run(probed):
    groups = report.group_by_model(probed)
    for parameter in (TAP, None):
        series = report.gradient_change_envelopes(groups, parameter=parameter)
        beta = report.trajectory_beta_envelopes(groups, parameter=parameter)
        for model in ("vgg", "vgg_bn"):
            curves = np.stack([report.run_gradient_change(r, parameter)[1]
                               for r in groups[model]])
            np.testing.assert_array_equal(series[model].envelope.low, curves.min(axis=0))
            np.testing.assert_array_equal(series[model].envelope.high, curves.max(axis=0))
            betas = np.stack([report.run_trajectory_beta(r, parameter)[1]
                              for r in groups[model]])
            np.testing.assert_array_equal(beta[model].envelope.high, betas.max(axis=0))
            assert series[model].source == (parameter or report.ALL_PARAMETERS)


def test_without_taps_the_trajectory_uses_all_parameters(records):
    runs = report.load_runs([records["probed"], records["plain"]])
    assert report.trajectory_source(runs) is None  # "plain" tapped nothing
    assert report.trajectory_source(report.load_runs([records["plain"]])) is None


# ---------------------------------------------------------------------------------------------
# Diverged and incomplete runs


def test_diverged_run_is_included_up_to_its_divergence(diverged):
    (run,) = diverged
    assert run.info.status == "diverged"
    d = run.diverged_step
    assert d is not None and d < 5
    assert run.last_step == d and not np.isfinite(run.data.steps.loss[-1])
    series = report.loss_envelopes(report.group_by_model(diverged))["vgg"]
    np.testing.assert_array_equal(series.envelope.step, np.arange(d + 1))
    assert series.envelope.n_runs[-1] == 0  # the non-finite loss is not in the envelope
    (curve,) = series.curves
    x, y = curve.end_point()
    finite = run.data.steps.loss[np.isfinite(run.data.steps.loss)]
    assert x == d and y == pytest.approx(float(finite[-1]))
    assert series.n_diverged == 1
    assert report.run_notes(diverged) == [
        f"vgg_lr10000 (diverged.h5): diverged at step {d} (non-finite training loss); "
        f"plotted up to there"]


def test_complete_run_has_no_end_marker(probed):
    series = report.loss_envelopes(report.group_by_model(probed))["vgg"]
    assert all(c.end_point() is None for c in series.curves)
    assert report.run_notes(probed) == []


# ---------------------------------------------------------------------------------------------
# Comparison


def test_compare_medians_match_independent_computation(probed):
    groups = report.group_by_model(probed)
    comp = report.compare(groups, "vgg", "vgg_bn")
    assert [r.metric for r in comp.rows if r.phase == "all"] == list(report.COMPARISON_METRICS)
    # beta: median over both vgg runs' probe betas.
    beta_a = np.concatenate([report.probe_bands(r).beta for r in groups["vgg"]])
    beta_b = np.concatenate([report.probe_bands(r).beta for r in groups["vgg_bn"]])
    row = comp.row("beta", "all")
    assert row.median_a == pytest.approx(np.median(beta_a))
    assert row.ratio == pytest.approx(np.median(beta_a) / np.median(beta_b))
    # loss band width: ratio high/low of the probe loss.
    width = np.concatenate([r.data.probe.loss.max(1).astype(float) / r.data.probe.loss.min(1)
                            for r in groups["vgg_bn"]])
    assert comp.row("loss_band_width", "all").median_b == pytest.approx(np.median(width))
    # envelope width: max − min of the loss across the two lrs, every step.
    losses = np.stack([r.data.steps.loss.astype(np.float64) for r in groups["vgg"]])
    env_width = losses.max(0) - losses.min(0)
    assert comp.row("loss_envelope_width", "all").median_a == pytest.approx(np.median(env_width))
    # trajectory metrics of the tapped parameter.
    change = np.concatenate([report.run_gradient_change(r, TAP)[1] for r in groups["vgg"]])
    assert comp.row("grad_change", "all").median_a == pytest.approx(np.median(change))


def test_compare_without_probe_leaves_out_the_paper_metrics(records):
    runs = report.load_runs([records["diverged"], records["plain"]])  # vgg (sgd) and vgg_bn
    comp = report.compare(report.group_by_model(runs), "vgg", "vgg_bn")
    metrics = {r.metric for r in comp.rows}
    assert metrics == {"grad_change", "trajectory_beta"}  # one run each: no envelope width
    with pytest.raises(ConfigError, match="no run of model 'resnet'"):
        report.compare(report.group_by_model(runs), "vgg", "resnet")


def test_summary_text_has_table_legend_and_notes(records):
    runs = report.load_runs([records["probed"], records["diverged"]])
    text = report.summary_text(report.group_by_model(runs))
    assert text.startswith("vgg (no BN) vs vgg_bn (BN): adam")
    assert "\nvgg vs vgg_bn: medians" in text  # the medians behind the verdict
    assert "loss_envelope_width" in text and "course: max − min of the training loss" in text
    assert f"Trajectory metrics (vgg vs vgg_bn) are of {TAP}." in text
    # Internal covariate shift was not measured: its metrics are named as missing.
    assert "Not available for both models: ics_distance, ics_cosine." in text
    assert "vgg_lr10000 (diverged.h5): diverged at step" in text
    assert report.summary_text(report.group_by_model(report.load_runs([records["plain"]]))) \
        is None
