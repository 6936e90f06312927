"""Figures (landscape.plot) and the `landscape plot` command, on real tiny records."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure

from landscape import plot, report
from landscape.cli import main
from landscape.config import ProbeConfig, RecordConfig
from landscape.sweep import record

TINY = dict(width=0.125, subset=256, batch_size=32, max_steps=6)
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    root = tmp_path_factory.mktemp("plot")
    configs = {
        "probed": RecordConfig(models=("vgg", "vgg_bn"), lrs=(1e-3, 5e-4),
                               probe=ProbeConfig(every=2), **TINY),
        "plain": RecordConfig(models=("vgg_bn",), lrs=(2e-3,), taps=(), **TINY),
        "diverged": RecordConfig(models=("vgg",), lrs=(1e4,), optimizer="sgd",
                                 probe=ProbeConfig(every=2), **TINY),
    }
    for name, config in configs.items():
        record(config, root / f"{name}.h5")
    paths = {name: root / f"{name}.h5" for name in configs}
    # An interrupted run: the "plain" record with its run's status changed.
    paths["interrupted"] = root / "interrupted.h5"
    shutil.copy(paths["plain"], paths["interrupted"])
    with h5py.File(paths["interrupted"], "r+") as f:
        f["runs/vgg_bn_lr0.002/status"][()] = np.bytes_("interrupted")
    return paths


@pytest.fixture(scope="module")
def probed(records):
    return report.load_runs([records["probed"]])


def shaded(ax):
    return [c for c in ax.collections if isinstance(c, PolyCollection)]


def markers(ax, marker):
    return [line for line in ax.lines if line.get_marker() == marker]


def legend_texts(ax_or_fig):
    legends = ax_or_fig.legends if isinstance(ax_or_fig, Figure) else [ax_or_fig.get_legend()]
    return [t.get_text() for lg in legends if lg is not None for t in lg.get_texts()]


def assert_labeled(ax):
    assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title()


# ---------------------------------------------------------------------------------------------
# Figures


def test_loss_landscape_shades_one_region_per_model(probed):
    envs = report.loss_envelopes(report.group_by_model(probed))
    fig = plot.plot_loss_landscape(envs)
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    assert_labeled(ax)
    assert ax.get_xlabel() == "training step"
    assert "training-batch loss" in ax.get_ylabel()
    assert "min to max" in ax.get_title() and "raw values" in ax.get_title()
    assert len(shaded(ax)) == 2
    assert legend_texts(ax) == ["vgg (no BatchNorm), 2 lrs (0.0005, 0.001), seed 0",
                                "vgg_bn (BatchNorm), 2 lrs (0.0005, 0.001), seed 0"]
    # The shaded polygon of vgg spans exactly the envelope.
    low = envs["vgg"].envelope.low
    ys = shaded(ax)[0].get_paths()[0].vertices[:, 1]
    assert ys.min() == pytest.approx(low.min())
    assert not markers(ax, "x")


def test_smoothed_loss_landscape_says_so(probed):
    envs = report.loss_envelopes(report.group_by_model(probed), smooth=2)
    title = plot.plot_loss_landscape(envs).axes[0].get_title()
    assert "each run smoothed first (trailing mean over 2 steps)" in title


def test_paper_figure_has_three_labeled_panels_and_log_loss_axis(probed):
    (data, _) = reversed(report.paper_data(report.group_by_model(probed)))
    assert data.lr == 1e-3
    fig = plot.plot_paper(data)
    ax_loss, ax_pred, ax_beta = fig.axes
    for ax in fig.axes:
        assert_labeled(ax)
        assert ax.get_xlabel() == "training step t (probed every 2 steps)"
    assert ax_loss.get_yscale() == "log"
    assert len(shaded(ax_loss)) == 2 and len(shaded(ax_pred)) == 2
    assert len(shaded(ax_beta)) == 0 and len(ax_beta.lines) == 2  # one β line per model
    assert "gradient predictiveness" in ax_pred.get_title()
    assert "β" in ax_beta.get_title()
    # Adam runs are probed along the update: multiples c of it, named in the title.
    assert "c ∈ [0.5, 4]" in fig.get_suptitle() and "lr = 0.001" in fig.get_suptitle()
    assert "probe along the update" in fig.get_suptitle()
    assert legend_texts(fig) == ["vgg (no BatchNorm)", "vgg_bn (BatchNorm)"]


def test_trajectory_figures_say_they_are_the_course_quantities(probed):
    groups = report.group_by_model(probed)
    parameter = report.trajectory_source(probed)
    fig = plot.plot_gradient_change(
        report.gradient_change_envelopes(groups, parameter=parameter))
    (ax,) = fig.axes
    assert_labeled(ax)
    assert "consecutive training steps" in ax.get_title()
    assert "classifier.fc3.weight" in ax.get_title()
    assert len(shaded(ax)) == 2
    fig = plot.plot_trajectory_beta(report.trajectory_beta_envelopes(groups, parameter=None))
    (ax,) = fig.axes
    assert_labeled(ax)
    assert "not the paper's effective β" in ax.get_title() and "all parameters" in ax.get_title()
    assert len(shaded(ax)) == 0 and len(ax.lines) == 2  # the max across lrs, per model


def test_training_curves_one_line_per_run_in_each_panel(probed):
    fig = plot.plot_training_curves(probed)
    ax_loss, ax_train, ax_test = fig.axes
    for ax in fig.axes:
        assert_labeled(ax)
    assert len(ax_loss.lines) == 4 and len(ax_train.lines) == 4 and len(ax_test.lines) == 4
    assert "held-out" in ax_test.get_ylabel()
    assert "epoch" in ax_train.get_xlabel()
    assert len(legend_texts(fig)) == 4


def test_plot_into_given_axes(probed):
    fig = Figure()
    ax = fig.subplots()
    envs = report.loss_envelopes(report.group_by_model(probed))
    assert plot.plot_loss_landscape(envs, ax=ax) is fig
    with pytest.raises(ValueError, match="needs 3 Axes, got 1"):
        plot.plot_paper(report.paper_data(report.group_by_model(probed))[0], axes=[ax])


def test_single_run_without_probe_or_taps(records):
    runs = report.load_runs([records["plain"]])
    figures = plot.all_figures(runs)
    assert list(figures) == ["loss_landscape", "gradient_change", "trajectory_beta",
                             "training_curves"]  # no probe: no paper figure
    ax = figures["gradient_change"].axes[0]
    assert "all parameters" in ax.get_title()
    ax = figures["loss_landscape"].axes[0]
    assert legend_texts(ax) == ["vgg_bn (BatchNorm), 1 run (lr 0.002, seed 0): no band"]
    assert len(shaded(ax)) == 0 and len(ax.lines) == 1  # a single run is its line, no band
    assert "one run per model" in ax.get_title()


def test_diverged_run_is_marked_in_every_figure(records):
    runs = report.load_runs([records["probed"], records["diverged"]])
    figures = plot.all_figures(runs)
    assert set(figures) == {"loss_landscape", "paper_lr0.0005", "paper_lr0.001",
                            "paper_lr10000", "gradient_change", "trajectory_beta",
                            "loss_envelope_width", "training_curves"}
    # The band width per optimizer too: only adam's models have two runs (lrs) to span.
    adam, sgd = figures["loss_envelope_width"].axes
    assert (adam.get_title(), sgd.get_title()) == ("optimizer=adam", "optimizer=sgd")
    assert [line.get_label() for line in adam.lines] == [
        f"{m}: 2 lrs (0.0005, 0.001), seed 0" for m in ("vgg (no BatchNorm)",
                                                          "vgg_bn (BatchNorm)")]
    assert not sgd.lines and [t.get_text() for t in sgd.texts] == ["no model has two runs at these levels"]
    # The records differ in their optimizer: these figures have a panel per optimizer.
    for name in ("loss_landscape", "gradient_change", "trajectory_beta"):
        adam, sgd = figures[name].axes
        assert (adam.get_title(), sgd.get_title()) == ("optimizer=adam", "optimizer=sgd")
        assert len(markers(adam, "x")) == 0 and len(markers(sgd, "x")) == 1, name
        texts = legend_texts(sgd)
        assert "vgg, 1 run (lr 10000, seed 0): no band, 1 diverged" in texts
        assert "diverged: first non-finite loss at this step" in texts
        assert "vgg (no BatchNorm), 2 lrs (0.0005, 0.001), seed 0" in legend_texts(adam)
    ax = figures["training_curves"].axes[0]
    assert len(markers(ax, "x")) == 1
    assert any("lr 10000, optimizer=sgd (diverged at step" in t
               for t in legend_texts(figures["training_curves"]))
    paper = figures["paper_lr10000"]
    assert all(len(markers(ax, "x")) == 1 for ax in paper.axes)
    # The loss exploded: the y axis of the loss landscape switched to log to show it all.
    assert figures["loss_landscape"].axes[1].get_yscale() == "log"
    for fig in figures.values():
        fig.canvas.draw()  # renders with the NaN/inf values without error


def test_incomplete_run_is_marked(records):
    runs = report.load_runs([records["interrupted"]])
    figures = plot.all_figures(runs)
    ax = figures["loss_landscape"].axes[0]
    assert len(markers(ax, "o")) == 1
    assert "incomplete run: last recorded step" in legend_texts(ax)
    assert any("(incomplete: interrupted)" in t
               for t in legend_texts(figures["training_curves"]))


def test_model_colors_are_distinct():
    colors = plot.model_colors(["vgg", "vgg_bn", "vgg_light"])
    assert len(set(colors.values())) == 3


# ---------------------------------------------------------------------------------------------
# The command


def test_cli_writes_every_figure_and_the_summary(records, tmp_path):
    out = tmp_path / "figs" / "nested"
    result = CliRunner().invoke(main, ["plot", str(records["probed"]), "--out", str(out)])
    assert result.exit_code == 0, result.output
    names = ["loss_landscape.png", "paper_lr0.0005.png", "paper_lr0.001.png",
             "gradient_change.png", "trajectory_beta.png", "training_curves.png",
             "loss_envelope_width.png", "summary.txt"]
    assert sorted(p.name for p in out.iterdir()) == sorted(names)
    for name in names[:-1]:
        assert (out / name).read_bytes()[:8] == PNG, name
        assert str(out / name) in result.output
    summary = (out / "summary.txt").read_text()
    assert summary.startswith("vgg (no BN) vs vgg_bn (BN)")
    assert "\nvgg vs vgg_bn: medians" in summary
    assert summary in result.output  # the same table is printed
    # The numbers in the table are those of the Python API.
    runs = report.load_runs([records["probed"]])
    comp = report.compare(report.group_by_model(runs), "vgg", "vgg_bn")
    assert comp.to_text() in summary


def test_cli_combines_records_and_other_formats(records, tmp_path):
    result = CliRunner().invoke(main, ["plot", str(records["diverged"]), str(records["plain"]),
                                       "--out", str(tmp_path), "--format", "svg",
                                       "--smooth", "2"])
    assert result.exit_code == 0, result.output
    svg = (tmp_path / "loss_landscape.svg").read_text()
    assert "<svg" in svg[:500]
    assert (tmp_path / "paper_lr10000.svg").exists()
    assert "Note: the records differ in optimizer: sgd (diverged.h5), adam (plain.h5)" \
        in result.output
    assert "vgg_lr10000 (diverged.h5): diverged at step" in result.output


def test_cli_without_bn_pair_writes_no_summary(records, tmp_path):
    result = CliRunner().invoke(main, ["plot", str(records["plain"]), "-o", str(tmp_path),
                                       "--format", "pdf"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "training_curves.pdf").read_bytes()[:5] == b"%PDF-"
    assert not (tmp_path / "summary.txt").exists()
    assert "no comparison table" in result.output


@pytest.mark.parametrize("case, message", [
    ("missing", "does not exist"),
    ("text", "is not an HDF5 file"),
    ("format", "Invalid value for '--format'"),
    ("smooth", "is longer than every run"),
    ("out_is_file", "exists and is not a folder"),
])
def test_cli_errors_are_one_line(records, tmp_path, case, message):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    out = str(tmp_path / "out")
    args = {
        "missing": [str(tmp_path / "nope.h5"), "--out", out],
        "text": [str(text), "--out", out],
        "format": [str(records["plain"]), "--out", out, "--format", "jpg"],
        "smooth": [str(records["plain"]), "--out", out, "--smooth", "50"],
        "out_is_file": [str(records["plain"]), "--out", str(text)],
    }[case]
    result = CliRunner().invoke(main, ["plot", *args])
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    errors = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(errors) == 1
