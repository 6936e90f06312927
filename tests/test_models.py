import pytest
import torch

from landscape.errors import ConfigError
from landscape.models import MODELS, build_model


def n_params(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name, expected", [
    ("vgg", 9_750_922),  # the course starter's VGG-A
    ("vgg_bn", 9_758_474),  # + BatchNorm2d after 8 convs and BatchNorm1d after 2 hidden linears
    ("vgg_dropout", 9_750_922),  # dropout adds no parameters
    # 2 convs (3->16, 16->32) and Linear(2048,128)-Linear(128,128)-Linear(128,10)
    ("vgg_light", 448 + 4_640 + 262_272 + 16_512 + 1_290),
])
def test_parameter_counts(name, expected):
    assert n_params(build_model(name)) == expected


@pytest.mark.parametrize("name", list(MODELS))
def test_every_parameter_gets_a_gradient(name):
    torch.manual_seed(0)
    model = build_model(name)
    if MODELS[name].task == "linear-regression":
        loss = model(torch.randn(4, 10)).pow(2).sum()
    else:
        x = torch.randn(4, *MODELS[name].input_shape)
        loss = torch.nn.functional.cross_entropy(model(x), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, pname


def test_bn_and_plain_variants_share_parameter_names():
    plain = dict(build_model("vgg").named_parameters())
    bn = dict(build_model("vgg_bn").named_parameters())
    assert set(plain) < set(bn)
    assert all(".norm" in name for name in set(bn) - set(plain))
    for name, p in plain.items():
        assert bn[name].shape == p.shape
    assert "classifier.fc3.weight" in plain


def test_norm_placement_conv_only_has_no_batchnorm1d():
    model = build_model("vgg", norm="bn", norm_placement="conv")
    kinds = {type(m).__name__ for m in model.modules()}
    assert "BatchNorm2d" in kinds and "BatchNorm1d" not in kinds
    assert n_params(model) == 9_758_474 - 2 * 2 * 512


def test_initialization_is_xavier_normal_with_zero_bias():
    torch.manual_seed(0)
    model = build_model("vgg")
    w = model.classifier.fc1.weight  # 512 x 512: Xavier std = sqrt(2 / (512 + 512))
    assert abs(w.std().item() - (2 / 1024) ** 0.5) < 0.002
    assert torch.count_nonzero(model.classifier.fc1.bias) == 0
    assert torch.count_nonzero(model.features.stage1.conv1.bias) == 0


def test_width_scales_channels():
    model = build_model("vgg_bn", width=0.125)
    assert model.features.stage1.conv1.out_channels == 8
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_unknown_model_lists_the_valid_names():
    with pytest.raises(ConfigError, match="unknown model 'resnet'.*vgg, vgg_bn"):
        build_model("resnet")


def test_unknown_option_is_named():
    with pytest.raises(ConfigError, match="no option colour"):
        build_model("vgg", colour="red")
