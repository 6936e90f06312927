"""The experiment figures: internal covariate shift, activation distributions, and the deep
linear network's records (no accuracy) in every figure; on real tiny records, with the numbers
checked against the recorded arrays."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure

import landscape
from landscape import plot, report
from landscape.cli import main
from landscape.config import ProbeConfig, RecordConfig
from landscape.errors import ConfigError

ICS_LAYERS = ("features.stage2.conv1", "classifier.fc1")
ACT_LAYER = "features.stage3.norm1"
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    root = tmp_path_factory.mktemp("experiments")
    configs = {
        # VGG with and without BN, ICS of two layers and activations of one, every 2 steps.
        "vgg": RecordConfig(models=("vgg", "vgg_bn"), lrs=(1e-3,), width=0.125, subset=256,
                            batch_size=32, max_steps=8, device="cpu", ics_every=2,
                            ics_layers=ICS_LAYERS, activation_every=2,
                            activation_layers=(ACT_LAYER,)),
        # The deep linear network: full-batch GD on a regression (accuracy is NaN).
        "dln": RecordConfig(models=("dln", "dln_bn"), lrs=(1e-6,), optimizer="sgd",
                            batch_size=1000, epochs=None, max_steps=20, eval_every=5,
                            device="cpu", taps=("layers.fc25.weight",),
                            probe=ProbeConfig(every=5, low=0.01, high=30, count=4,
                                              spacing="log"),
                            ics_every=5, ics_layers=("layers.fc5",)),
    }
    # One thread: these models are tiny, and on a shared machine a second thread spinning in
    # every 10x10 matmul made the DLN record 10x slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for name, config in configs.items():
            landscape.record(config, root / f"{name}.h5")
    finally:
        torch.set_num_threads(threads)
    return {name: root / f"{name}.h5" for name in configs}


@pytest.fixture(scope="module")
def vgg(records):
    return report.load_runs([records["vgg"]])


@pytest.fixture(scope="module")
def dln(records):
    return report.load_runs([records["dln"]])


def shaded(ax):
    return [c for c in ax.collections if isinstance(c, PolyCollection)]


def legend_texts(fig: Figure):
    return [t.get_text() for lg in fig.legends for t in lg.get_texts()]


def with_lr(ics: report.RunICS, lr: float) -> report.RunICS:
    """The same measurements as if taken at another learning rate (a second run of the model)."""
    def moved(curves):
        return {layer: replace(c, lr=lr, run_id=f"{ics.model}_lr{lr:g}")
                for layer, c in curves.items()}
    return replace(ics, lr=lr, run_id=f"{ics.model}_lr{lr:g}",
                   distance=moved(ics.distance), cosine=moved(ics.cosine))


# ---------------------------------------------------------------------------------------------
# Internal covariate shift


def test_run_ics_is_the_recorded_distance_and_cosine_per_layer(vgg):
    data = report.ics_data(report.group_by_model(vgg))
    assert [d.run_id for d in data] == ["vgg_lr0.001", "vgg_bn_lr0.001"]
    assert report.ics_layers(data) == ICS_LAYERS
    for run, ics in zip(vgg, data):
        recorded = run.data.ics
        assert ics.layers == tuple(recorded.layers) == ICS_LAYERS
        for j, layer in enumerate(ICS_LAYERS):
            np.testing.assert_array_equal(ics.distance[layer].step, [0, 2, 4, 6])
            np.testing.assert_array_equal(ics.distance[layer].values,
                                          recorded.distance[:, j].astype(np.float64))
            np.testing.assert_array_equal(ics.cosine[layer].values,
                                          recorded.cosine[:, j].astype(np.float64))
        # Definition 2.1 gives a distance >= 0 and a cosine in [-1, 1] (up to float32).
        assert (recorded.distance >= 0).all() and (np.abs(recorded.cosine) <= 1 + 1e-6).all()


def test_runs_without_ics_give_none(dln, vgg):
    assert all(report.run_ics(r) is not None for r in dln)
    assert report.ics_layers(report.ics_data(report.group_by_model(dln))) == ("layers.fc5",)
    assert report.activation_data(report.group_by_model(dln)) == {}


def test_ics_figure_one_column_per_layer_two_rows(vgg):
    fig = plot.plot_ics(report.ics_data(report.group_by_model(vgg)))
    assert isinstance(fig, Figure)
    axes = fig.axes
    assert len(axes) == 4  # 2 rows x 2 layers, row-major
    top, bottom = axes[:2], axes[2:]
    for ax, layer in zip(top, ICS_LAYERS):
        assert layer in ax.get_title()
        assert "‖G − G′‖₂" in ax.get_ylabel()
        assert len(ax.lines) == 2  # one line per run
    for ax in bottom:
        assert "cos∠(G, G′)" in ax.get_ylabel()
        assert len(ax.lines) == 3  # one per run, and the dotted reference at cos = 1
        assert ax.get_ylim()[1] >= 1
    for ax in axes:
        assert ax.get_xlabel() == "training step t (measured every 2 steps)"
    title = fig.get_suptitle()
    assert "Definition 2.1" in title and "lr 0.001" in title
    assert "before vs after the preceding layers' update" in title and "same batch" in title
    # One lr per model: the legend names the models only.
    assert legend_texts(fig) == ["vgg (no BatchNorm)", "vgg_bn (BatchNorm)"]
    # BN and no-BN lines have different colors; the line is the recorded distance.
    line_vgg, line_bn = top[0].lines
    assert line_vgg.get_color() != line_bn.get_color()
    np.testing.assert_array_equal(line_vgg.get_ydata(), vgg[0].data.ics.distance[:, 0])


def test_ics_figure_names_the_lr_when_a_model_has_several(vgg):
    data = report.ics_data(report.group_by_model(vgg))
    fig = plot.plot_ics([data[0], with_lr(data[0], 2e-3), data[1]])
    assert legend_texts(fig) == ["vgg (no BatchNorm), lr 0.001", "vgg (no BatchNorm), lr 0.002",
                                 "vgg_bn (BatchNorm)"]
    assert "lr 0.001" not in fig.get_suptitle()  # the runs do not share one lr
    top = fig.axes[0]
    assert len({line.get_linestyle() for line in top.lines}) >= 2  # vgg's two lrs differ


def test_ics_figure_into_given_axes_and_errors(vgg):
    data = report.ics_data(report.group_by_model(vgg))
    fig = Figure()
    axes = fig.subplots(2, 2)
    assert plot.plot_ics(data, axes=axes) is fig
    with pytest.raises(ValueError, match="needs 2 x 2 = 4 Axes, got 1"):
        plot.plot_ics(data, axes=[axes[0, 0]])
    with pytest.raises(ValueError, match="no run with internal covariate shift"):
        plot.plot_ics([])


# ---------------------------------------------------------------------------------------------
# Activation distributions


def test_activation_bands_are_numpy_percentiles_of_the_recorded_statistics(vgg):
    for run in vgg:
        act = run.data.activations[ACT_LAYER]
        bands = report.activation_bands(run, ACT_LAYER)
        mean = act.mean.astype(np.float64)
        std = np.sqrt(act.var.astype(np.float64))
        np.testing.assert_array_equal(bands.step, [0, 2, 4, 6])
        assert bands.n_channels == mean.shape[1] and bands.percentiles == (10.0, 90.0)
        low, median, high = np.percentile(mean, [10, 50, 90], axis=1)
        np.testing.assert_allclose(bands.mean_low, low, rtol=1e-12)
        np.testing.assert_allclose(bands.mean_median, median, rtol=1e-12)
        np.testing.assert_allclose(bands.mean_high, high, rtol=1e-12)
        low, median, high = np.percentile(std, [10, 50, 90], axis=1)
        np.testing.assert_allclose(bands.std_low, low, rtol=1e-12)
        np.testing.assert_allclose(bands.std_median, median, rtol=1e-12)
        np.testing.assert_allclose(bands.std_high, high, rtol=1e-12)
        assert bands.channels == (0, 1, 2)
        np.testing.assert_array_equal(bands.mean_traces, mean[:, :3])
        np.testing.assert_array_equal(bands.std_traces, std[:, :3])
    # BatchNorm's output (γ = 1, β = 0 at the start) has per-channel mean 0 and std 1.
    bn = report.activation_bands(vgg[1], ACT_LAYER)
    assert abs(bn.mean_median[0]) < 1e-3 and bn.std_median[0] == pytest.approx(1, abs=1e-2)
    other = report.activation_bands(vgg[0], ACT_LAYER, percentiles=(25, 75), n_traces=0)
    np.testing.assert_allclose(
        other.std_high, np.percentile(np.sqrt(vgg[0].data.activations[ACT_LAYER].var
                                              .astype(np.float64)), 75, axis=1), rtol=1e-12)
    assert other.channels == () and other.mean_traces.shape == (4, 0)


def test_activation_bands_reject_bad_arguments(vgg):
    with pytest.raises(ConfigError, match="0 <= low < 50 < high <= 100"):
        report.activation_bands(vgg[0], ACT_LAYER, percentiles=(90, 10))
    with pytest.raises(ConfigError, match="recorded no activations of 'features.stage1.norm1'"):
        report.activation_bands(vgg[0], "features.stage1.norm1")


def test_activation_figure_bands_medians_and_labels(vgg):
    data = report.activation_data(report.group_by_model(vgg))
    assert list(data) == [ACT_LAYER]
    assert [b.run_id for b in data[ACT_LAYER]] == ["vgg_lr0.001", "vgg_bn_lr0.001"]
    fig = plot.plot_activations(data)
    axes = fig.axes
    assert len(axes) == 4  # rows: mean, std of the one layer; columns: the two runs
    (mean_vgg, mean_bn, std_vgg, std_bn) = axes
    assert mean_vgg.get_title() == "vgg (no BatchNorm)"
    assert mean_bn.get_title() == "vgg_bn (BatchNorm)"
    channels = vgg[0].data.activations[ACT_LAYER].mean.shape[1]
    assert mean_vgg.get_ylabel() == f"{ACT_LAYER} ({channels} channels)\nchannel mean"
    assert "std" in std_vgg.get_ylabel()
    for ax in axes:
        assert len(shaded(ax)) == 1  # the percentile band
        assert len(ax.lines) == 4  # 3 single channels and the median
        assert ax.get_xlabel() == "training step t (recorded every 2 steps)"
    # Panels of a row share their y range (so BN and no-BN compare directly).
    assert mean_vgg.get_ylim() == mean_bn.get_ylim()
    assert std_vgg.get_ylim() == std_bn.get_ylim()
    # The shaded band spans the 10th to 90th percentile; the thick line is the median.
    bands = data[ACT_LAYER][0]
    ys = shaded(mean_vgg)[0].get_paths()[0].vertices[:, 1]
    assert ys.min() == pytest.approx(bands.mean_low.min())
    assert ys.max() == pytest.approx(bands.mean_high.max())
    np.testing.assert_array_equal(mean_vgg.lines[-1].get_ydata(), bands.mean_median)
    texts = legend_texts(fig)
    assert "shaded: 10th to 90th percentile over the layer's channels" in texts
    assert "thick line: median over channels" in texts
    assert "thin dashed: single channels (channels 0, 1, 2)" in texts
    title = fig.get_suptitle()
    assert "Figures 2 and 7" in title and "vgg has no normalization" in title


def test_activation_figure_errors(vgg):
    with pytest.raises(ValueError, match="no run with recorded activations"):
        plot.plot_activations({})
    data = report.activation_data(report.group_by_model(vgg))
    with pytest.raises(ValueError, match="needs 2 x 2 = 4 Axes"):
        plot.plot_activations(data, axes=Figure().subplots(1, 2))


# ---------------------------------------------------------------------------------------------
# The comparison table gains ICS rows


def test_comparison_has_ics_medians_per_layer(vgg):
    groups = report.group_by_model(vgg)
    comp = report.compare(groups, "vgg", "vgg_bn")
    metrics = [r.metric for r in comp.rows if r.phase == "all"]
    assert metrics[-4:] == [f"ics_distance[{ICS_LAYERS[0]}]", f"ics_distance[{ICS_LAYERS[1]}]",
                            f"ics_cosine[{ICS_LAYERS[0]}]", f"ics_cosine[{ICS_LAYERS[1]}]"]
    for j, layer in enumerate(ICS_LAYERS):
        row = comp.row(f"ics_distance[{layer}]", "all")
        a = vgg[0].data.ics.distance[:, j].astype(np.float64)
        b = vgg[1].data.ics.distance[:, j].astype(np.float64)
        assert row.median_a == pytest.approx(np.median(a))
        assert row.median_b == pytest.approx(np.median(b))
        assert row.n_a == row.n_b == 4
        cos = comp.row(f"ics_cosine[{layer}]", "all")
        assert cos.median_b == pytest.approx(np.median(vgg[1].data.ics.cosine[:, j]))
    text = report.summary_text(groups)
    assert f"ics_distance[{ICS_LAYERS[0]}]" in text
    assert text.count("  ics_distance[layer]  paper Def. 2.1") == 1  # explained once
    assert "Not available for both models: loss_band_width, predictiveness, beta, " \
           "loss_envelope_width." in text
    assert report.metric_description("ics_cosine[x]") == report.ICS_METRICS["ics_cosine"]


# ---------------------------------------------------------------------------------------------
# The deep linear network (regression: no accuracy)


def test_dln_training_curves_show_losses_instead_of_accuracy(dln):
    assert all(np.isnan(r.data.eval.test_acc).all() for r in dln)
    fig = plot.plot_training_curves(dln)
    ax_loss, ax_train, ax_test = fig.axes
    assert "no accuracy" in ax_train.get_title() and "no accuracy" in ax_test.get_title()
    assert ax_train.get_ylabel() == "mean training-batch loss"
    assert ax_test.get_ylabel() == "held-out loss"
    assert ax_test.get_xlabel() == "epoch (evaluated every 5 steps and at the last step)"
    for ax in (ax_train, ax_test):
        assert len(ax.lines) == 2
    np.testing.assert_array_equal(ax_test.lines[0].get_ydata(), dln[0].data.eval.test_loss)
    np.testing.assert_array_equal(ax_train.lines[1].get_ydata(), dln[1].data.eval.train_loss)
    # Losses around 100 that shrink by less than 100x stay on a linear axis.
    assert ax_loss.get_yscale() == ax_test.get_yscale() == "linear"


def test_dln_paper_and_single_lr_loss_landscape(dln):
    groups = report.group_by_model(dln)
    (data,) = report.paper_data(groups)
    assert data.eta_description() == "η ∈ [0.01, 30]×lr (4 values, log)"
    fig = plot.plot_paper(data)
    assert fig.axes[0].get_yscale() == "log"
    assert fig.axes[0].get_xlabel() == "training step t (probed every 5 steps)"
    fig = plot.plot_loss_landscape(report.loss_envelopes(groups))
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "dln (no BatchNorm), 1 run (lr 1e-06, seed 0): no band",
        "dln_bn (BatchNorm), 1 run (lr 1e-06, seed 0): no band"]
    assert not shaded(ax) and len(ax.lines) == 2
    assert "one run per model" in ax.get_title()
    assert ax.get_yscale() == "linear"


def test_full_batch_runs_say_consecutive_steps_share_the_batch(dln, vgg):
    assert report.full_batch(dln) and not report.full_batch(vgg)
    figures = plot.all_figures(dln)
    assert "on the same (full) batch" in figures["gradient_change"].axes[0].get_title()
    assert "on the same (full) batch" in figures["trajectory_beta"].axes[0].get_title()
    title = plot.all_figures(vgg)["gradient_change"].axes[0].get_title()
    assert "on different batches" in title


def test_model_names_of_the_normalization_variants():
    models = ["vgg", "vgg_noisy_bn", "vgg_l1", "vgg_linf"]
    assert plot.model_name("vgg", models) == "vgg (no BatchNorm)"
    assert plot.model_name("vgg_noisy_bn", models) == "vgg_noisy_bn (noisy BatchNorm)"
    assert plot.model_name("vgg_l1", models) == "vgg_l1 (ℓ1 normalization)"
    assert plot.model_name("vgg_linf", models) == "vgg_linf (ℓ∞ normalization)"
    assert plot.model_name("vgg", ["vgg", "resnet20"]) == "vgg"


# ---------------------------------------------------------------------------------------------
# The command


def test_cli_writes_ics_and_activation_figures(records, tmp_path):
    result = CliRunner().invoke(main, ["plot", str(records["vgg"]), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    names = {"loss_landscape.png", "gradient_change.png", "trajectory_beta.png",
             "training_curves.png", "ics.png", "activations.png", "activation_histograms.png",
             "summary.txt"}
    assert {p.name for p in tmp_path.iterdir()} == names
    for name in ("ics.png", "activations.png", "activation_histograms.png"):
        assert (tmp_path / name).read_bytes()[:8] == PNG
    summary = (tmp_path / "summary.txt").read_text()
    assert re.search(rf"^ics_distance\[{re.escape(ICS_LAYERS[1])}\] +all ", summary, re.M)
    assert f"ics_cosine[{ICS_LAYERS[0]}]" in result.output


def test_cli_on_the_deep_linear_network(records, tmp_path):
    result = CliRunner().invoke(main, ["plot", str(records["dln"]), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert {p.name for p in tmp_path.iterdir()} == {
        "loss_landscape.png", "paper_lr1e-06.png", "gradient_change.png",
        "trajectory_beta.png", "training_curves.png", "ics.png", "summary.txt"}
    assert "ics_distance[layers.fc5]" in (tmp_path / "summary.txt").read_text()
