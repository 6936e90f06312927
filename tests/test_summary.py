"""`summarize`: per-layer shapes, parameters and MACs; `landscape summary` on the command line."""

import inspect

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from landscape.cli import main
from landscape.models import MODELS, build_model
from landscape.models.summary import summarize, summarize_model
from landscape.models.vgg import VGG_A_HIDDEN, VGG_A_STAGES


def tiny_options(name):
    params = inspect.signature(MODELS[name].builder).parameters
    return {"width": 0.125} if "width" in params else {}


@pytest.mark.parametrize("name", list(MODELS))
def test_totals_are_the_sums_of_the_rows(name):
    s = summarize_model(name, **tiny_options(name))
    model = build_model(name, **tiny_options(name))
    assert s.params == sum(r.params for r in s.rows) == sum(p.numel() for p in model.parameters())
    assert s.macs == sum(r.macs for r in s.rows) > 0
    if getattr(MODELS[name], "task", "image-classification") == "image-classification":
        assert s.output_shape == (10,) and s.input_shape == MODELS[name].input_shape
    assert len({r.name for r in s.rows}) == len(s.rows)  # every module called once


def test_vgg_a_macs_by_hand():
    macs, side, c_in = 0, 32, 3
    for stage in VGG_A_STAGES:
        for c_out in stage:
            macs += side * side * c_out * c_in * 3 * 3  # padding 1: the side is kept
            c_in = c_out
        side //= 2
    features = c_in * side * side  # 512 * 1 * 1
    for h in (*VGG_A_HIDDEN, 10):
        macs += features * h
        features = h
    assert macs == 153_293_824  # ≈ 0.15 GMAC per image
    s = summarize_model("vgg")
    assert s.macs == macs
    assert summarize_model("vgg_bn").macs == macs  # normalization counts 0
    assert s.params == 9_750_922


def test_resnet20_macs_by_hand():
    # stem; stage1: 6 convs 16->16 at 32x32; stage2/3: 6 convs at 16x16/8x8, the first from
    # half the channels; fc.
    expected = (32 * 32 * 16 * 3 * 9 + 6 * 32 * 32 * 16 * 16 * 9
                + 16 * 16 * 32 * 9 * (16 + 5 * 32) + 8 * 8 * 64 * 9 * (32 + 5 * 64) + 64 * 10)
    assert summarize_model("resnet20_bn").macs == expected == 40_551_040


def test_rows_count_conv_and_linear():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.Conv2d(8, 8, 3, padding=1, groups=4), nn.Flatten(),
                          nn.Linear(8 * 16 * 16, 10))
    s = summarize(model)
    assert [r.name for r in s.rows] == ["0", "1", "2", "3", "4", "5"]
    assert [r.output_shape for r in s.rows] == [(8, 16, 16)] * 4 + [(2048,), (10,)]
    assert [r.macs for r in s.rows] == [8 * 256 * 3 * 9, 0, 0, 8 * 256 * 2 * 9, 0, 2048 * 10]
    assert [r.params for r in s.rows] == [3 * 8 * 9 + 8, 16, 0, 8 * 2 * 9 + 8, 0, 20490]


def test_summary_leaves_the_model_as_it_was():
    model = build_model("resnet18_bn", width=0.125)
    model.train()
    model.fc.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    summarize(model)
    assert model.training and not model.fc.training and model.stem.norm.training
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # running stats untouched


def test_uncalled_and_shared_parameters_are_counted_once():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(1))  # a container's own parameter
            self.fc = nn.Linear(3 * 32 * 32, 10)
            self.unused = nn.Linear(4, 4)

        def forward(self, x):
            return self.fc(torch.flatten(x, 1)) * self.scale

    model = Net()
    s = summarize(model)
    by_name = {r.name: r for r in s.rows}
    assert by_name["unused"].output_shape is None and by_name["unused"].params == 20
    assert by_name["(model)"].params == 1
    assert s.params == sum(r.params for r in s.rows) == 1 + 30_730 + 20


def invoke(args):
    return CliRunner().invoke(main, ["summary", *args])


def test_cli_prints_an_aligned_table_and_totals():
    result = invoke(["lenet_bn"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    header, rows, total = lines[0], lines[1:-1], lines[-1]
    assert header.split() == ["layer", "type", "output", "params", "MACs"]
    assert len(rows) == 15 and rows[0].split()[:2] == ["features.conv1", "Conv2d"]
    col = header.index("output")
    assert all(row[col - 2:col] == "  " and row[col] != " " for row in rows)
    assert "classifier.fc1    Linear       120       69,240   69,120" in result.output
    assert total == ("Total: lenet_bn: 82,486 parameters (82,486 trainable), 716,328 MACs "
                     "(0.001 GMAC) per 3x32x32 image, output 10")


def test_cli_width_and_norm():
    result = invoke(["resnet20", "--width", "0.25", "--norm", "l2"])
    assert result.exit_code == 0, result.output
    model = build_model("resnet20", width=0.25, norm="l2")
    n = sum(p.numel() for p in model.parameters())
    assert f"Total: resnet20 (width=0.25, norm=l2): {n:,} parameters" in result.output
    assert "LpNorm" in result.output


@pytest.mark.parametrize("args, message", [
    (["nope"], "Error: unknown model 'nope'; valid models: " + ", ".join(MODELS)),
    (["vgg", "--norm", "group"], "Error: unknown normalization 'group'"),
    (["vgg", "--width", "0"], "Error: width must be positive, got 0.0"),
])
def test_cli_errors_are_one_line(args, message):
    result = invoke(args)
    assert result.exit_code == 1
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
