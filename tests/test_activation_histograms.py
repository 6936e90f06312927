"""The activation probe's fixed-bin histograms: against numpy.histogram of the layer's output,
through the record and its reader, and drawn as the paper draws them."""

import numpy as np
import pytest
import torch

import landscape
from landscape import open_record, plot, report
from landscape.config import RecordConfig
from landscape.models import build_model
from landscape.probes.activations import ActivationProbe
from landscape.store.schema import (ACTIVATION_HIST_BINS, ACTIVATION_HIST_RANGE,
                                    activation_hist_edges)

LAYER = "features.stage1.norm1"


def numpy_histogram(values: np.ndarray) -> np.ndarray:
    low, high = ACTIVATION_HIST_RANGE
    clamped = np.clip(values.astype(np.float64).ravel(), low, high)
    counts, _ = np.histogram(clamped, bins=activation_hist_edges())
    return counts


def test_probe_histogram_is_numpys_of_the_layers_output():
    torch.manual_seed(0)
    model = build_model("vgg_light_bn", width=0.5)
    probe = ActivationProbe(model, LAYER, every=1)
    seen = {}
    layer = dict(model.named_modules())[LAYER]
    # A copy: the in-place ReLU after the layer overwrites its output.
    layer.register_forward_hook(
        lambda m, i, o: seen.__setitem__("out", o.detach().numpy().copy()))
    # Scaled input so that some values leave [-6, 6] after the first layer (the edge bins).
    x = 4 * torch.randn(16, 3, 32, 32)
    with torch.no_grad():
        layer.weight.mul_(3.0)  # γ = 3: BN's output reaches past ±6
    probe.arm()
    model(x)
    hist = probe.measure(None)["hist"]
    assert hist.dtype == torch.int64 and hist.shape == (ACTIVATION_HIST_BINS,)
    out = seen["out"]
    assert hist.sum().item() == out.size
    np.testing.assert_array_equal(hist.numpy(), numpy_histogram(out))
    low, high = ACTIVATION_HIST_RANGE
    assert (out < low).any() and (out > high).any()  # the clamping is exercised
    assert hist[0] >= (out < low).sum() and hist[-1] >= (out > high).sum()


def test_histogram_counts_nothing_outside_the_training_forward():
    model = build_model("vgg_light_bn", width=0.5)
    probe = ActivationProbe(model, LAYER, every=1)
    model(torch.randn(2, 3, 32, 32))  # not armed: a probe or evaluation forward
    assert probe.measure(None) == {}


@pytest.fixture(scope="module")
def record(tmp_path_factory, embedded):
    out = tmp_path_factory.mktemp("hist") / "hist.h5"
    config = RecordConfig(models=("vgg_light", "vgg_light_bn"), lrs=(0.05,), optimizer="sgd",
                          max_steps=6, subset=256, batch_size=32, activation_every=2,
                          activation_layers=(LAYER,), device="cpu")
    landscape.record(config, out)
    return out


def test_record_writes_histograms(record):
    rec = open_record(record)
    for run_id in rec.runs:
        act = rec.load(run_id).activations[LAYER]
        assert act.hist.dtype == np.int64 and act.hist.shape == (3, ACTIVATION_HIST_BINS)
        np.testing.assert_array_equal(act.hist_edges, activation_hist_edges())
        assert len(set(act.hist.sum(axis=1))) == 1 and act.hist.sum(axis=1)[0] > 0
        np.testing.assert_array_equal(act.step, [0, 2, 4])


def test_figure_has_one_panel_per_model(record):
    runs = report.load_runs([record])
    data = report.activation_histograms(report.group_by_model(runs))
    assert [h.model for h in data] == ["vgg_light", "vgg_light_bn"]
    assert all(h.layer == LAYER and h.counts.shape == (3, ACTIVATION_HIST_BINS) for h in data)
    figures = plot.all_figures(runs)
    fig = figures["activation_histograms"]
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert len(panels) == 2
    assert LAYER in fig.get_suptitle() and "one run per model" in fig.get_suptitle()
    # Each panel names the run it shows (one per model, not the model's runs pooled).
    assert [ax.get_title() for ax in panels] == [
        "vgg_light (no BatchNorm)\none run: lr 0.05, seed 0",
        "vgg_light_bn (BatchNorm)\none run: lr 0.05, seed 0"]
    with pytest.raises(ValueError, match="no run"):
        plot.plot_activation_histograms([])
