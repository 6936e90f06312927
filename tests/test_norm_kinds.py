"""Normalization as a property of any model: the kinds gn, ln, in, ws against torch's own
layers, timm's StdConv2d and float64 closed forms; every BatchNorm layer of a torchvision or
timm network replaced with its parameter names kept; refusals in one line."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from landscape.errors import ConfigError
from landscape.models import build_model, model_identity
from landscape.models.norms import group_count, make_norm
from landscape.models.swap import StandardizedConv2d, norm_kind_of, replace_batchnorm
from landscape.sweep.plans import check_input


@pytest.mark.parametrize("channels, groups", [(64, 32), (128, 32), (48, 24), (16, 8), (6, 3),
                                              (2, 1), (3, 1), (37, 1), (96, 32)])
def test_group_rule(channels, groups):
    assert group_count(channels) == groups
    assert channels % groups == 0 and (channels // groups >= 2 or groups == 1)


def test_ln_is_layernorm_over_channels_height_width():
    x = torch.randn(4, 6, 5, 7, dtype=torch.float64) * 3 + 1
    ln = make_norm("ln", 6, spatial=True).double()
    reference = nn.LayerNorm([6, 5, 7], elementwise_affine=False).double()
    torch.testing.assert_close(ln(x), reference(x))
    with torch.no_grad():  # its γ, β are per channel (BatchNorm's shapes and names)
        ln.weight.copy_(torch.arange(1.0, 7.0))
        ln.bias.fill_(0.5)
    expected = reference(x) * torch.arange(1.0, 7.0).view(1, 6, 1, 1).double() + 0.5
    torch.testing.assert_close(ln(x), expected)


def test_gn_and_in_normalize_per_sample_over_their_groups():
    x = torch.randn(3, 8, 4, 4, dtype=torch.float64) * 2 - 1
    gn = make_norm("gn", 8, spatial=True).double()  # 4 groups of 2 channels
    groups = x.view(3, 4, 2 * 16)
    mean, var = groups.mean(-1, keepdim=True), groups.var(-1, unbiased=False, keepdim=True)
    torch.testing.assert_close(gn(x), ((groups - mean) / (var + 1e-5).sqrt()).view_as(x))
    inorm = make_norm("in", 8, spatial=True).double()
    flat = x.view(3, 8, 16)
    mean, var = flat.mean(-1, keepdim=True), flat.var(-1, unbiased=False, keepdim=True)
    torch.testing.assert_close(inorm(x), ((flat - mean) / (var + 1e-5).sqrt()).view_as(x))
    with pytest.raises(ConfigError, match="InstanceNorm after a linear layer"):
        make_norm("in", 8, spatial=False)


def test_standardized_conv_against_closed_form_and_timm():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 5, 3, padding=1, bias=True)
    weight, bias = conv.weight.detach().clone(), conv.bias.detach().clone()
    conv.__class__ = StandardizedConv2d
    x = torch.randn(2, 3, 8, 8)
    w = weight.double()
    mean = w.mean(dim=(1, 2, 3), keepdim=True)
    var = ((w - mean) ** 2).mean(dim=(1, 2, 3), keepdim=True)
    expected = nn.functional.conv2d(x.double(), (w - mean) / (var + 1e-6).sqrt(),
                                    bias.double(), padding=1)
    torch.testing.assert_close(conv(x).double(), expected, rtol=1e-5, atol=1e-5)
    timm_layers = pytest.importorskip("timm.layers")
    std = timm_layers.StdConv2d(3, 5, 3, padding=1, bias=True, eps=1e-6)
    std.load_state_dict({"weight": weight, "bias": bias})
    torch.testing.assert_close(conv(x), std(x), rtol=1e-5, atol=1e-6)


def _names(model):
    return [n for n, _ in model.named_parameters()]


@pytest.mark.parametrize("kind", ["gn", "ln", "in", "noisy_bn", "l2"])
def test_torchvision_resnet_twins_keep_parameter_names(kind):
    torch.manual_seed(0)
    bn = build_model("torchvision:resnet18", data_classes=10)
    torch.manual_seed(0)
    twin = build_model("torchvision:resnet18", data_classes=10, norm=kind)
    assert _names(twin) == _names(bn)
    # The same initialization: no random number is drawn by a replacement layer.
    for (name, p), q in zip(bn.named_parameters(), twin.parameters()):
        assert torch.equal(p, q), name
    assert norm_kind_of(twin) == kind and model_identity("torchvision:resnet18", None, twin) \
        == ("torchvision:resnet18", kind)
    if kind == "in":  # on 32x32 images its last stage has one position: nothing to normalize
        with pytest.raises(ConfigError, match="cannot take the data's 3x32x32 images "
                                              r"\(Expected more than 1 spatial element"):
            check_input(twin, "torchvision:resnet18", torch.zeros(2, 3, 32, 32), 10)
        assert twin(torch.zeros(2, 3, 64, 64)).shape == (2, 10)
    else:
        check_input(twin, "torchvision:resnet18", torch.zeros(2, 3, 32, 32), 10)


def test_none_removes_gamma_beta_and_ws_keeps_every_name():
    bn = build_model("torchvision:resnet18", data_classes=10)
    none = build_model("torchvision:resnet18", data_classes=10, norm="none")
    assert _names(none) == [n for n in _names(bn) if "bn" not in n and "downsample.1" not in n]
    assert norm_kind_of(none) == "none"
    ws = build_model("torchvision:resnet18", data_classes=10, norm="ws")
    assert list(ws.state_dict()) == list(bn.state_dict())
    assert type(ws.conv1) is StandardizedConv2d and norm_kind_of(ws) == "ws"


def test_table_models_take_every_kind_with_aligned_names():
    plain = _names(build_model("vgg_light_bn", width=0.25))
    for kind in ("gn", "ln", "ws"):
        model = build_model("vgg_light", width=0.25, norm=kind)
        assert _names(model) == plain, kind
        assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    model = build_model("vgg_light", width=0.25, norm="in", norm_placement="conv")
    assert norm_kind_of(model) == "in"
    with pytest.raises(ConfigError, match="InstanceNorm after a linear layer"):
        build_model("vgg_light", width=0.25, norm="in")  # normalizes the linear layers too
    with pytest.raises(ConfigError, match="no conv layer"):
        build_model("dln", norm="ws")


def test_refusals_are_one_line():
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(12, 4))
    with pytest.raises(ConfigError, match="has no BatchNorm layer to replace with gn "
                                          r"\(its normalization: none\)") as error:
        replace_batchnorm(mlp, "gn", "mine")
    assert "\n" not in str(error.value)
    assert replace_batchnorm(mlp, "none", "mine") is mlp  # already without normalization
    with_ln = nn.Sequential(nn.Linear(12, 4), nn.LayerNorm(4))
    with pytest.raises(ConfigError, match=r"\(its normalization: ln\); --norm swaps BatchNorm"):
        replace_batchnorm(with_ln, "none", "vit-like")
    timm = pytest.importorskip("timm")
    effnet = timm.create_model("efficientnet_b0", num_classes=10)
    with pytest.raises(ConfigError, match="BatchNormAct2d .* cannot replace faithfully"):
        replace_batchnorm(effnet, "gn", "timm:efficientnet_b0")


def test_timm_models_are_built_and_swapped():
    pytest.importorskip("timm")
    model = build_model("timm:resnet18", data_classes=7, data_channels=1, norm="gn")
    assert norm_kind_of(model) == "gn"
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 7)  # in_chans and classes: the data's


def test_outside_names_are_refused_in_one_line(monkeypatch):
    with pytest.raises(ConfigError, match="torchvision has no model 'resnet19'; did you mean"):
        build_model("torchvision:resnet19")
    with pytest.raises(ConfigError, match="cannot import module 'no_such_module'"):
        build_model("no_such_module:make")
    with pytest.raises(ConfigError, match="unknown model 'foo'.*package.module:factory"):
        build_model("foo")
    with pytest.raises(ConfigError, match=r"cannot be built with .*bogus=1"):
        build_model("torchvision:resnet18", bogus=1)
    monkeypatch.setitem(__import__("sys").modules, "timm", None)  # timm not installed
    with pytest.raises(ConfigError, match=r"needs timm, an optional extra: pip install"):
        build_model("timm:resnet18")


def test_group_rule_on_a_torchvision_resnet():
    model = build_model("torchvision:resnet18", norm="gn")
    assert model.bn1.num_groups == 32 and model.layer4[0].bn1.num_groups == 32
    assert math.gcd(model.bn1.num_channels, model.bn1.num_groups) == model.bn1.num_groups
