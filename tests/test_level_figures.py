"""Figures of a record with an axis (`--vary batch_size=16,32`): every figure of a model's runs
is split by level (issues #19, #23), titled with its level, and draws only that level's runs;
checked against the record's own arrays on a tiny record with every probe on."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

import landscape
from landscape import plot, report
from landscape.cli import main
from landscape.plot.captions import CAPTIONS, PER_LEVEL, figure_caption

ICS_LAYER = "features.stage2.conv1"
ACT_LAYER = "features.stage1.norm1"
LEVELS = (16, 32)
SEEDS = (0, 1)
MODELS = ("vgg_light", "vgg_light_bn")


@pytest.fixture(scope="module")
def path(tmp_path_factory, cifar_dir, one_thread):
    out = tmp_path_factory.mktemp("levels") / "levels.h5"
    result = CliRunner().invoke(main, [
        "record", "--model", ",".join(MODELS), "--lrs", "0.05", "--optimizer", "sgd",
        "--seeds", "0,1", "--vary", "batch_size=16,32", "--width", "0.125", "--max-steps", "4",
        "--ics-every", "2", "--ics-layer", ICS_LAYER, "--activation-every", "2",
        "--activation-layer", ACT_LAYER, "--hessian-every", "2", "--hessian-iters", "4",
        "--hessian-trace-samples", "2", "--hessian-density-at", "0,2",
        "--hessian-density-iters", "4", "--probe-every", "2", "--probe-count", "3",
        "--device", "cpu", "--data-dir", str(cifar_dir), "--no-verify", "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def figures(path):
    return plot.all_figures(report.load_runs([path]))


@pytest.fixture(scope="module")
def stored(path):
    """run id -> the record's arrays of that run (the store's reader, not the report's)."""
    record = landscape.open_record(path)
    return {run_id: record.load(run_id) for run_id in record.runs}


def run_id(model: str, batch_size: int, seed: int) -> str:
    return f"{model}_lr0.05_batch_size={batch_size}_s{seed}"


def level_runs(batch_size: int) -> list[str]:
    return [run_id(m, batch_size, s) for m in MODELS for s in SEEDS]


def solid_lines(ax, n_points: int) -> list[np.ndarray]:
    """The y data of the panel's solid lines of `n_points` points (reference lines such as
    axhline, drawn across the axes, left out)."""
    return [np.asarray(line.get_ydata(), dtype=np.float64) for line in ax.lines
            if line.get_linestyle() == "-" and len(line.get_ydata()) == n_points
            and line.get_transform() is not ax.get_yaxis_transform()]


def assert_same_rows(drawn: list[np.ndarray], expected: list[np.ndarray]) -> None:
    """The drawn lines are the expected arrays, each once, in any order."""
    assert len(drawn) == len(expected)
    left = list(expected)
    for line in drawn:
        match = [i for i, e in enumerate(left) if np.allclose(line, e, rtol=1e-6, atol=0)]
        assert match, f"a drawn line {line} is no run's array at this level"
        left.pop(match[0])


def test_every_per_model_figure_is_split_by_level(figures):
    per_level = ["ics", "activations", "activation_histograms", "hessian", "hessian_density"]
    assert set(figures) == {
        "loss_landscape", "gradient_change", "trajectory_beta", "loss_envelope_width",
        "paper_lr0.05", "training_curves",
        *(f"{name}_batch_size={b}" for name in per_level for b in LEVELS)}
    for name in per_level:
        for b in LEVELS:
            title = figures[f"{name}_batch_size={b}"].get_suptitle()
            assert title.startswith(f"At batch_size={b}\n"), (name, title)
    width = figures["loss_envelope_width"]
    assert [ax.get_title() for ax in width.axes] == [f"batch_size={b}" for b in LEVELS]
    assert "per level" in width.get_suptitle() and "(lrs, seeds)" in width.get_suptitle()


def test_band_width_panels_are_each_levels_own_max_minus_min(figures, stored):
    for ax, b in zip(figures["loss_envelope_width"].axes, LEVELS):
        expected = [np.ptp(np.stack([stored[run_id(m, b, s)].steps.loss for s in SEEDS])
                           .astype(np.float64), axis=0) for m in MODELS]
        assert_same_rows(solid_lines(ax, 4), expected)
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert all(text.endswith("2 seeds (0, 1) at lr 0.05") for text in legend), legend


def test_ics_figure_of_a_level_draws_that_levels_runs(figures, stored):
    for b in LEVELS:
        fig = figures[f"ics_batch_size={b}"]
        top, bottom = fig.axes[:2]
        runs = level_runs(b)
        assert_same_rows(solid_lines(top, 2) + [np.asarray(l.get_ydata(), np.float64)
                                                for l in top.lines if l.get_linestyle() != "-"],
                         [stored[r].ics.distance[:, 0].astype(np.float64) for r in runs])
        legend = [t.get_text() for lg in fig.legends for t in lg.get_texts()]
        # Two seeds at one lr: each legend entry names its seed.
        assert sorted(legend) == sorted(f"{m} ({'BatchNorm' if m.endswith('bn') else 'no BatchNorm'})"
                                        f", lr 0.05, seed {s}" for m in MODELS for s in SEEDS)


def test_hessian_figure_of_a_level_draws_that_levels_runs(figures, stored):
    for b in LEVELS:
        fig = figures[f"hessian_batch_size={b}"]
        curvature, trace = fig.axes[:2]
        runs = level_runs(b)
        assert_same_rows(solid_lines(curvature, 2),
                         [stored[r].hessian.eigenvalues[:, 0].astype(np.float64) for r in runs])
        assert_same_rows(solid_lines(trace, 2),
                         [stored[r].hessian.trace.astype(np.float64) for r in runs])
        legend = [t.get_text() for lg in fig.legends for t in lg.get_texts()]
        assert {"seed 0", "seed 1"} <= set(legend)
        assert "one line per run (seeds 0, 1" in fig.get_suptitle()


def test_activation_figures_of_a_level_draw_that_levels_runs(figures, stored):
    for b in LEVELS:
        fig = figures[f"activations_batch_size={b}"]
        mean_row = fig.axes[:4]  # 2 rows (mean, std) x 4 runs
        medians = [line.get_ydata() for ax in mean_row for line in ax.lines
                   if line.get_linewidth() == 1.8]
        assert_same_rows([np.asarray(m, np.float64) for m in medians],
                         [np.median(stored[r].activations[ACT_LAYER].mean.astype(np.float64),
                                    axis=1) for r in level_runs(b)])
        assert {ax.get_title().split(", ", 1)[1] for ax in mean_row} == {
            "lr 0.05, seed 0", "lr 0.05, seed 1"}


def test_activation_histograms_name_their_run_and_show_its_counts(figures, stored):
    for b in LEVELS:
        fig = figures[f"activation_histograms_batch_size={b}"]
        panels = [ax for ax in fig.axes if ax.get_title()]
        assert len(panels) == 2
        for ax, model in zip(panels, MODELS):
            # The first run of the model at this level: lr 0.05, seed 0, named in the title.
            assert ax.get_title().endswith("one run: lr 0.05, seed 0")
            act = stored[run_id(model, b, 0)].activations[ACT_LAYER]
            counts, edges = act.hist[-1].astype(np.float64), act.hist_edges
            density = counts / (counts.sum() * np.diff(edges))
            last = ax.lines[-1].get_ydata()  # the last step's outline, drawn at the bottom
            np.testing.assert_allclose(last[::2], density)


def test_hessian_density_of_a_level_spans_that_levels_eigenvalues(figures, stored):
    for b in LEVELS:
        fig = figures[f"hessian_density_batch_size={b}"]
        for ax, index in zip(fig.axes, (0, 1)):  # steps 0 and 2
            nodes = np.concatenate([stored[r].hessian_density.nodes[index] for r in level_runs(b)])
            low, high = np.nanmin(nodes), np.nanmax(nodes)
            sigma = 0.01 * (high - low)
            for line in ax.lines:
                x = line.get_xdata()
                assert x[0] == pytest.approx(low - 5 * sigma) and x[-1] == pytest.approx(
                    high + 5 * sigma)
            assert len(ax.lines) == 2  # one line per model: its two seeds pooled
        assert "seeds 0, 1 pooled" in fig.get_suptitle()


def test_every_figure_has_its_own_caption(figures):
    for name in figures:
        caption = figure_caption(name)
        assert caption in CAPTIONS.values() or caption.endswith(PER_LEVEL), name
    assert figure_caption("hessian_density_batch_size=16") == \
        f"{CAPTIONS['hessian_density']} {PER_LEVEL}"
    assert figure_caption("hessian_batch_size=16") == f"{CAPTIONS['hessian']} {PER_LEVEL}"


def test_training_curves_name_each_runs_level(figures):
    legend = [t.get_text() for lg in figures["training_curves"].legends for t in lg.get_texts()]
    # Eight runs, eight distinct labels: the same model, lr and seed at two batch sizes.
    assert sorted(legend) == sorted(
        f"{m} ({'BatchNorm' if m.endswith('bn') else 'no BatchNorm'}), lr 0.05, seed {s}, "
        f"batch_size={b}" for m in MODELS for s in SEEDS for b in LEVELS)
