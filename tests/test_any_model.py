"""Any model through `landscape record`: a torchvision ResNet and a factory in a module the
project never saw, each compared across normalizations in one record (--vary norm), a
verdict per kind against no normalization from `landscape plot`; the model's source, options
and versions stored; a model that does not fit the data refused in one line before any
training."""

from __future__ import annotations

import textwrap

import pytest
from click.testing import CliRunner

from landscape.cli import main
from landscape.store import open_record

NETS = '''
"""A user's networks, unknown to landscape."""
from torch import nn

__version__ = "0.3"


def small_net(num_classes=10, channels=8):
    return nn.Sequential(
        nn.Conv2d(3, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels), nn.ReLU(),
        nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels),
        nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes))


def mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10))
'''
QUICK = ["--subset", "128", "--batch-size", "32", "--device", "cpu", "--no-taps"]


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "user_nets.py").write_text(textwrap.dedent(NETS))
    monkeypatch.syspath_prepend(str(folder))
    return folder / "user_nets.py"


def _invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_a_factory_model_gets_a_verdict_per_normalization(tmp_path, user_module, one_thread):
    out = tmp_path / "r.h5"
    result = _invoke("record", "--model", "user_nets:small_net", "--model-option", "channels=6",
                     "--vary", "norm=none,bn,gn", "--seeds", "0,1", "--optimizer", "sgd",
                     "--lrs", "0.05", "--max-steps", "6", "--probe-every", "2",
                     "--save-weights-at", "end", *QUICK, "-o", out)
    assert result.exit_code == 0, result.output
    rec = open_record(out)
    runs = {r.factors["norm"]: r for r in rec.runs.values() if r.attrs["seed"] == 0}
    assert {k: (r.family, r.norm) for k, r in runs.items()} == {
        kind: ("user_nets:small_net", kind) for kind in ("none", "bn", "gn")}
    assert runs["gn"].attrs["build_options"] == {"channels": 6, "norm": "gn", "num_classes": 10}
    assert runs["gn"].attrs["model_source"] == f"module user_nets 0.3 ({user_module}): small_net"
    assert "torchvision" in rec.versions
    # gn keeps BatchNorm's names (γ, β); none drops them.
    assert runs["gn"].attrs["parameter_count"] == runs["bn"].attrs["parameter_count"] \
        == runs["none"].attrs["parameter_count"] + 2 * 2 * 6
    result = _invoke("plot", out, "--out", tmp_path / "figures")
    assert result.exit_code == 0, result.output
    assert "user_nets:small_net (no BN) vs user_nets:small_net_bn (BN): sgd" in result.output
    assert "user_nets:small_net (no normalization) vs user_nets:small_net_gn (GN): sgd" \
        in result.output
    assert "ratio = median without GN / median with GN" in result.output
    # The kept weights rebuild the GroupNorm twin (its build_options): pruning and surfaces.
    gn_run = runs["gn"].run_id
    result = _invoke("prune", out, "--run", gn_run, "--layer", "3.weight", "--fractions",
                     "0,50", "--device", "cpu", "-o", tmp_path / "prune.png")
    assert result.exit_code == 0 and "50" in result.output, result.output
    result = _invoke("surface", out, "--run", gn_run, "--step", "last", "--dims", "1",
                     "--points", "3", "--images", "64", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert len(open_record(out).surfaces(gn_run)) == 1


def test_a_torchvision_resnet_with_and_without_batchnorm(tmp_path, one_thread):
    out = tmp_path / "tv.h5"
    result = _invoke("record", "--model", "torchvision:resnet18", "--vary", "norm=none,bn",
                     "--lrs", "0.01", "--optimizer", "sgd", "--max-steps", "2", "--probe-every",
                     "1", "--probe-count", "2", "--subset", "32", "--batch-size", "8",
                     "--device", "cpu", "-o", out)
    assert result.exit_code == 0, result.output
    rec = open_record(out)
    assert sorted((r.family, r.norm) for r in rec.runs.values()) == [
        ("torchvision:resnet18", "bn"), ("torchvision:resnet18", "none")]
    assert all(r.taps == ("fc.weight",) for r in rec.runs.values())  # the last linear layer
    assert next(iter(rec.runs.values())).attrs["model_source"].startswith(
        "torchvision 0.") and "get_model('resnet18')" in \
        next(iter(rec.runs.values())).attrs["model_source"]
    result = _invoke("plot", out, "--out", tmp_path / "figures")
    assert result.exit_code == 0, result.output
    assert "torchvision:resnet18 (no BN) vs torchvision:resnet18_bn (BN): sgd" in result.output


@pytest.mark.parametrize("args, message", [
    (["--model", "user_nets:small_net", "--model-option", "num_classes=7"],
     "model 'user_nets:small_net' gives [2, 7] for 2 images of the data's 3x32x32, which have "
     "10 classes"),
    (["--model", "user_nets:mlp"],  # no num_classes parameter: the factory's own 10 fit
     None),
    (["--model", "user_nets:mlp", "--norm", "gn"],
     "model 'user_nets:mlp' has no BatchNorm layer to replace with gn (its normalization: "
     "none)"),
    (["--model", "user_nets:small_net", "--dataset", "mnist"],
     "model 'user_nets:small_net' cannot take the data's 1x28x28 images"),
    (["--model", "user_nets:no_such"], "module 'user_nets' has no function 'no_such'"),
    (["--model", "user_nets:small_net,user_nets:small_net", "--norm", "gn"],
     "a model is listed twice"),
    (["--model", "vgg_light,vgg_light_bn", "--vary", "norm=none,gn"],
     "--vary norm gives every model each normalization: list one model of family 'vgg_light'"),
    (["--model", "user_nets:small_net", "--model-option", "channels"],
     "--model-option takes KEY=VALUE"),
    (["--model", "user_nets:small_net", "--vary", "model_options=a,b"],
     "cannot vary model_options within one record"),
])
def test_a_model_that_does_not_fit_is_refused_before_training(tmp_path, user_module, args,
                                                              message, one_thread):
    out = tmp_path / "refused.h5"
    result = _invoke("record", *args, "--max-steps", "1", *QUICK, "-o", out)
    if message is None:
        assert result.exit_code == 0, result.output
        return
    assert result.exit_code != 0
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and message in errors[0], result.output
    assert "Traceback" not in result.output and not out.exists()
