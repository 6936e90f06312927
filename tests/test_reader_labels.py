"""What a reader sees (issue 23): figures and tables say what a band spans (lrs, seeds, both) and
tell seeds apart; two seeds give the per-seed range, not a "95% interval"; hessian.png labels
its trace panel, marks seeds, draws 2/lr across the axis and notes negative traces."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from landscape import report
from landscape.cli import main
from landscape.plot import (plot_gradient_change, plot_hessian_course, plot_loss_landscape,
                            plot_training_curves, plot_trajectory_beta)
from landscape.report.curvature import RunHessian
from landscape.report.spans import span_text


@pytest.fixture(scope="module")
def two_seeds(tmp_path_factory, cifar_dir, one_thread):
    """vgg and vgg_bn at one lr, seeds 0 and 1, probed and Hessian-probed: (path, output)."""
    from tests.conftest import TINY
    out = tmp_path_factory.mktemp("two-seeds") / "r.h5"
    result = CliRunner().invoke(main, [
        "record", *TINY, "--data-dir", str(cifar_dir), "--no-verify", "--model", "vgg,vgg_bn",
        "--lrs", "0.05", "--optimizer", "sgd", "--seeds", "0,1", "--probe-every", "2",
        "--hessian-every", "2", "--hessian-iters", "6", "--hessian-trace-samples", "3",
        "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out, result.output


@pytest.fixture(scope="module")
def groups(two_seeds):
    return report.group_by_model(report.load_runs([two_seeds[0]]))


def legend_texts(fig) -> list[str]:
    legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend())]
    return [t.get_text() for legend in legends for t in legend.get_texts()]


def test_span_text_names_lrs_and_seeds():
    assert span_text([(0.05, 0), (0.05, 1)]) == "2 seeds (0, 1) at lr 0.05"
    assert span_text([(0.05, 3)]) == "1 run (lr 0.05, seed 3)"
    assert span_text([(1e-3, 0), (2e-3, 0)]) == "2 lrs (0.001, 0.002), seed 0"
    # The demo's course figure: 4 lrs x 3 seeds is not "12 lrs".
    grid = [(lr, s) for lr in (1e-4, 5e-4, 1e-3, 2e-3) for s in (0, 1, 2)]
    assert span_text(grid) == \
        "4 lrs x 3 seeds = 12 runs (lrs 0.0001, 0.0005, 0.001, 0.002; seeds 0, 1, 2)"


def test_record_counts_seeds_as_seeds(two_seeds):
    _, output = two_seeds
    assert "4 runs (2 models x 1 lr x 2 seeds: vgg, vgg_bn)" in output
    assert "learning rates" not in output.split("Writing")[0]


def test_the_run_count_multiplies_out_where_an_axis_applies_to_some_models():
    from landscape.cli.record import runs_text
    from landscape.config import RecordConfig
    from landscape.sweep import plan_runs

    config = RecordConfig(models=("vgg_light", "vgg_light_bn"), lrs=(0.1,), optimizer="sgd",
                          seeds=(0, 1, 2), axes={"norm_placement": ["conv", "all"],
                                                 "batch_size": [128, 256]})
    plans = plan_runs(config)
    # The demo-placement study: the plain network has no BatchNorm to place (not 2 x 2 x 2 x 3).
    assert runs_text(config, plans) == (
        "18 runs (vgg_light: 1 lr x 2 batch_size x 3 seeds = 6; vgg_light_bn: 1 lr x 2 "
        "norm_placement x 2 batch_size x 3 seeds = 12)")
    both = RecordConfig(models=("vgg_light", "vgg_light_bn"), lrs=(0.1, 0.05), optimizer="sgd",
                        seeds=(0, 1), axes={"batch_size": [128, 256]})
    assert runs_text(both, plan_runs(both)) == (
        "16 runs (2 models x 2 lrs x 2 batch_size x 2 seeds: vgg_light, vgg_light_bn)")


def test_band_legends_and_titles_say_seeds_not_lrs(groups):
    figures = [plot_loss_landscape(report.loss_envelopes(groups)),
               plot_gradient_change(report.gradient_change_envelopes(groups, parameter=None)),
               plot_trajectory_beta(report.trajectory_beta_envelopes(groups, parameter=None))]
    for fig in figures:
        texts = [t for t in legend_texts(fig) if "BatchNorm" in t]
        assert len(texts) == 2, texts
        assert all("2 seeds (0, 1) at lr 0.05" in t and "lrs" not in t for t in texts), texts
        title = fig.axes[0].get_title()
        assert "one per lr" not in title and "across learning rates" not in title, title
    assert "one per seed" in figures[0].axes[0].get_title()
    assert "one per seed" in figures[2].axes[0].get_title()


def test_training_curves_legend_tells_seeds_apart(groups):
    runs = [r for rs in groups.values() for r in rs]
    texts = [t for t in legend_texts(plot_training_curves(runs)) if "lr" in t]
    assert len(texts) == 4 and len(set(texts)) == 4, texts
    assert any(t.endswith("lr 0.05, seed 1") for t in texts)


def test_two_seed_summary_is_a_range_with_every_seed_verdicts(groups):
    v = report.verdict(groups, "vgg", "vgg_bn")
    text = v.to_text()
    assert "95%" not in text and "bootstrap interval" not in text
    assert "per-seed range" in text and "a verdict only where every seed agrees" in text
    assert "running mean over 10 steps" in text
    row = v.row("beta")
    # Ground truth: each seed's ratio of median β (the probe's bands), recomputed here.
    per_seed = []
    for seed in (0, 1):
        beta = {m: np.concatenate([report.probe_bands(r).beta for r in groups[m]
                                   if r.seed == seed]) for m in ("vgg", "vgg_bn")}
        per_seed.append(np.nanmedian(beta["vgg"]) / np.nanmedian(beta["vgg_bn"]))
    assert row.per_step.per_seed == pytest.approx(per_seed)
    assert (row.per_step.low, row.per_step.high) == pytest.approx(sorted(per_seed))
    line = next(ln for ln in text.splitlines() if ln.startswith("beta "))
    assert f"{min(per_seed):.3g} to {max(per_seed):.3g}" in line
    words = ("(every seed)" if all(r > 1 for r in per_seed) or all(r < 1 for r in per_seed)
             else "seeds disagree")
    assert words in line
    for row in v.rows:  # no verdict from a 2-seed "interval": every seed agrees, or it says not
        assert row.per_step.basis == "seed range"
        assert row.per_step.all_seeds_agree == (row.per_step.verdict in ("greater", "less"))


def test_hessian_figure_labels_marks_and_full_width_threshold(groups):
    data = report.hessian_data(groups)
    fig = plot_hessian_course(data)
    ax_l, ax_t = fig.axes[:2]
    assert ax_t.get_ylabel() and "trace" in ax_t.get_ylabel()
    curves = [ln for ln in ax_l.get_lines() if ln.get_linestyle() == "-"]
    markers = {ln.get_marker() for ln in curves}
    assert len(curves) == 4 and len(markers) == 2 and "None" not in markers  # one per seed
    texts = legend_texts(fig)
    assert "seed 0" in texts and "seed 1" in texts
    threshold = [ln for ln in ax_l.get_lines() if ln.get_linestyle() == "--"]
    assert len(threshold) == 1
    # axhline: x from 0 to 1 in axes coordinates, i.e. the whole axis
    assert list(threshold[0].get_xdata()) == [0, 1]
    assert threshold[0].get_ydata()[0] == pytest.approx(2 / 0.05)


def _run_hessian(seed: int, trace, step_lr) -> RunHessian:
    step = np.arange(0, 10 * len(trace), 10)
    return RunHessian(f"vgg_s{seed}", "vgg", 0.1, seed, step, np.full(len(step), 3.0),
                      np.asarray(trace, dtype=float), np.full(len(step), 0.5),
                      np.asarray(step_lr, dtype=float), np.zeros(0, dtype=np.int64), np.zeros(0))


def test_hessian_figure_notes_negative_traces_and_follows_a_schedule():
    fig = plot_hessian_course([_run_hessian(0, [5.0, -2.0, 4.0], [0.1, 0.1, 0.05]),
                               _run_hessian(1, [5.0, 6.0, 4.0], [0.1, 0.1, 0.05])])
    ax_l, ax_t = fig.axes[:2]
    notes = [t.get_text() for t in ax_t.texts]
    assert len(notes) == 1 and "trace < 0" in notes[0] and "vgg seed 0 (1 step)" in notes[0]
    assert "seed 1" not in notes[0] and "indefinite" in notes[0]
    (threshold,) = [ln for ln in ax_l.get_lines() if ln.get_linestyle() == "--"]
    x = threshold.get_xdata()
    assert x[0] == pytest.approx(ax_l.get_xlim()[0]) and x[-1] == pytest.approx(ax_l.get_xlim()[1])
    assert set(np.round(threshold.get_ydata(), 9)) == {20.0, 40.0}
    positive = plot_hessian_course([_run_hessian(0, [5.0, 2.0, 4.0], [0.1] * 3)])
    assert not positive.axes[1].texts


def test_record_says_what_the_hessian_probe_costs_and_shows_it_running(two_seeds, groups):
    from landscape.config.hessian import HessianConfig
    from landscape.probes.hessian_cost import probed_steps, products_per_probed_step
    _, output = two_seeds
    assert "Hessian probe: up to " in output
    for model in ("vgg", "vgg_bn"):
        line = next(ln for ln in output.splitlines() if ln.startswith(f"  {model}: one Hessian"))
        assert "per run 3 probed steps x up to 9 products" in line and "over its 2 runs" in line
    # The stated counts are those the record then holds: 3 probed steps of at most 9 products.
    config = HessianConfig(every=2, iters=6, trace_samples=3)
    assert probed_steps(config, 6) == (3, 0) and products_per_probed_step(config) == 9
    for run in (r for rs in groups.values() for r in rs):
        h = run.data.hessian
        assert len(h.step) == 3 and 0 < h.hvps.max() <= 9
    assert "running hessian (step 0)" in output  # the bar names the probe while it runs


def test_surface_titles_name_the_seed_where_there_are_several():
    from landscape.plot.surfaces import plot_surface_lines
    from landscape.report.surfaces import SurfacePanel
    alpha = np.linspace(-1, 1, 5)
    panels = [SurfacePanel(f"vgg_s{s}", "vgg", 0.1, 3, 1, alpha, 1 + alpha ** 2 * (s + 1),
                           "random", "train", 64, True, s) for s in (0, 1)]
    labels = legend_texts(plot_surface_lines(panels))
    assert labels == ["vgg, lr 0.1, seed 0", "vgg, lr 0.1, seed 1"]
    assert legend_texts(plot_surface_lines(panels[:1])) == ["vgg, lr 0.1"]
