"""The CIFAR-10 model zoo: ResNet-18/20, the 3-block CNN, LeNet, with every normalization kind."""

import inspect

import pytest
import torch
from torch import nn

from landscape.errors import ConfigError
from landscape.models import MODELS, build_model
from landscape.models.norms import NORM_KINDS
from landscape.models.resnet import ZeroPadShortcut

# The CIFAR-10 models of the table (others, such as the deep linear network, take vectors).
IMAGE_MODELS = [n for n, spec in MODELS.items()
                if getattr(spec, "task", "image-classification") == "image-classification"]


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def options_of(name):
    spec = MODELS[name]
    return {p.name for p in inspect.signature(spec.builder).parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY}


def tiny(name, **options):
    """The model at 1/8 width when it has a width option (same layers, same names)."""
    if "width" in options_of(name):
        options.setdefault("width", 0.125)
    return build_model(name, **options)


def conv(c_in, c_out, k, bias=False):
    return c_in * c_out * k * k + (c_out if bias else 0)


def resnet20_params(shortcut):
    """He et al.'s ResNet-20 by hand: stem, 3 stages of 3 blocks, fc; BN (2 per channel)."""
    total = conv(3, 16, 3) + 2 * 16
    c_in = 16
    for c in (16, 32, 64):
        for b in range(3):
            total += conv(c_in, c, 3) + conv(c, c, 3) + 2 * (2 * c)
            if c_in != c and shortcut == "B":
                total += conv(c_in, c, 1) + 2 * c
            c_in = c
    return total + 64 * 10 + 10


# 2 x (every BatchNorm channel): ResNet-18 has 64 (stem) + 2*64*2 + (2*2+1)*(128+256+512).
RESNET18_BN_CHANNELS = 64 + 4 * 64 + 5 * (128 + 256 + 512)


@pytest.mark.parametrize("name, expected", [
    ("resnet18_bn", 11_173_962),
    ("resnet18_imagenet_bn", 11_181_642),  # torchvision's resnet18 with a 10-way fc
    ("resnet18", 11_173_962 - 2 * RESNET18_BN_CHANNELS),
    ("resnet18_imagenet", 11_181_642 - 2 * RESNET18_BN_CHANNELS),
    ("resnet20_bn", 269_722),  # option A; 272,474 is option B (next test)
    ("resnet20", 269_722 - 2 * (16 * 7 + 32 * 6 + 64 * 6)),
    # convs with bias 3->32->64->128, Linear(2048, 10), + BN on 32+64+128 channels
    ("cnn3_bn", 114_186),
    ("cnn3", conv(3, 32, 3, True) + conv(32, 64, 3, True) + conv(64, 128, 3, True) + 20_490),
    ("lenet", conv(3, 8, 5, True) + conv(8, 16, 3, True) + 576 * 120 + 120 + 120 * 84 + 84
     + 84 * 10 + 10),
    ("lenet_bn", 82_030 + 2 * (8 + 16 + 120 + 84)),
])
def test_parameter_counts(name, expected):
    assert n_params(build_model(name)) == expected


def test_resnet20_counts_by_hand():
    assert resnet20_params("A") == 269_722 == n_params(build_model("resnet20_bn"))
    # The often-quoted 272,474 counts 1x1-conv + BN projections (option B) at the two stage
    # changes: 16*32 + 2*32 + 32*64 + 2*64 = 2,752 more.
    assert resnet20_params("B") == 272_474 == n_params(build_model("resnet20_bn", shortcut="B"))


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_output_shape(name):
    model = tiny(name)
    shape = MODELS[name].input_shape
    assert model(torch.randn(3, *shape)).shape == (3, 10)
    model.eval()
    assert model(torch.randn(1, *shape)).shape == (1, 10)


def _assert_every_parameter_gets_a_gradient(model, shape=(3, 32, 32)):
    torch.manual_seed(1)
    model.train()
    x = torch.randn(4, *shape)
    loss = nn.functional.cross_entropy(model(x), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_every_parameter_gets_a_gradient(name):
    torch.manual_seed(0)
    _assert_every_parameter_gets_a_gradient(tiny(name), MODELS[name].input_shape)


def test_deep_net_without_normalization_gets_gradients_at_full_width():
    # Without normalization the residual stream grows block by block (logits of std ~10 at
    # init for ResNet-20); the gradients must still reach every layer. (tests/test_models.py
    # runs the same check on every model of the table at full width, ResNet-18 included.)
    torch.manual_seed(0)
    _assert_every_parameter_gets_a_gradient(build_model("resnet20"))


def _architectures():
    """One image model per architecture: "X_bn" (or "X_l2") is "X" with another norm, so
    norm=kind covers them all."""
    seen, names = set(), []
    for name in IMAGE_MODELS:
        spec = MODELS[name]
        key = (spec.builder, tuple(sorted((k, repr(v)) for k, v in spec.defaults.items()
                                          if k != "norm")))
        if "norm" in options_of(name) and key not in seen:
            seen.add(key)
            names.append(name)
    return names


ARCHITECTURES = _architectures()


# Where InstanceNorm has nothing to normalize: LeNet-5 normalizes its linear fc1 (one value per
# channel), the ImageNet stem leaves one position per channel on 32x32 images. The VGGs and
# LeNet normalize their linear layers too unless told to normalize the convs only.
_NO_INSTANCE_NORM = {"lenet5": ConfigError, "resnet18_imagenet": ValueError}


@pytest.mark.parametrize("kind", NORM_KINDS)
@pytest.mark.parametrize("name", ARCHITECTURES)
def test_every_model_takes_every_normalization(name, kind):
    torch.manual_seed(0)
    if kind == "in" and name in _NO_INSTANCE_NORM:
        with pytest.raises(_NO_INSTANCE_NORM[name]):
            _assert_every_parameter_gets_a_gradient(tiny(name, norm=kind),
                                                    MODELS[name].input_shape)
        return
    placement = {"norm_placement": "conv"} if kind == "in" and \
        "norm_placement" in options_of(name) else {}
    model = tiny(name, norm=kind, **placement)
    _assert_every_parameter_gets_a_gradient(model, MODELS[name].input_shape)
    # Non-normalization parameters are named as without normalization, and only those.
    plain = dict(tiny(name, norm="none").named_parameters())
    named = dict(model.named_parameters())
    assert set(plain) <= set(named)
    for pname in set(named) - set(plain):
        assert any(part.startswith("norm") for part in pname.split(".")), pname
    for pname, p in plain.items():
        assert named[pname].shape == p.shape


@pytest.mark.parametrize("name", [n for n in IMAGE_MODELS if n + "_bn" in MODELS])
def test_bn_variant_shares_parameter_names(name):
    plain = dict(tiny(name).named_parameters())
    bn = dict(tiny(name + "_bn").named_parameters())
    assert set(plain) < set(bn)
    assert all(any(part.startswith("norm") for part in n.split("."))
               for n in set(bn) - set(plain))
    for pname, p in plain.items():
        assert bn[pname].shape == p.shape
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm)
                   for m in tiny(name).modules())


def test_variants_are_constructor_options():
    torch.manual_seed(0)
    a = build_model("resnet18_imagenet_bn", width=0.125)
    torch.manual_seed(0)
    b = build_model("resnet18", stem="imagenet", norm="bn", width=0.125)
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_resnet18_stems():
    cifar, imagenet = build_model("resnet18_bn"), build_model("resnet18_imagenet_bn")
    x = torch.randn(2, 3, 32, 32)
    assert cifar.stem(x).shape == (2, 64, 32, 32)
    assert imagenet.stem(x).shape == (2, 64, 8, 8)  # 7x7/2 conv then 3x3/2 max-pool
    assert imagenet.stem.conv.kernel_size == (7, 7) and isinstance(cifar.stem.pool, nn.Identity)
    # Projection shortcuts where the shape changes, identities elsewhere.
    block = cifar.stages.stage2.block1
    assert block.shortcut.conv.kernel_size == (1, 1) and block.shortcut.conv.stride == (2, 2)
    assert isinstance(block.shortcut.norm, nn.BatchNorm2d)
    assert isinstance(cifar.stages.stage1.block1.shortcut, nn.Identity)
    assert isinstance(cifar.stages.stage2.block2.shortcut, nn.Identity)


@pytest.mark.parametrize("stem", ["imagenet", "cifar"])
def test_resnet18_computes_what_torchvision_resnet18_computes(stem):
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    ours = build_model("resnet18_bn", stem=stem).eval()
    ref = torchvision.models.resnet18(num_classes=10).eval()
    if stem == "cifar":
        ref.conv1 = nn.Conv2d(3, 64, kernel_size=3, padding=1, bias=False)
        ref.maxpool = nn.Identity()
    # Same tensors in the same order (conv1/bn1/.../downsample -> conv1/norm1/.../shortcut).
    for name, buffer in ours.named_buffers():  # non-trivial running statistics
        if name.endswith("running_mean"):
            buffer.normal_(0, 0.1)
        elif name.endswith("running_var"):
            buffer.uniform_(0.5, 1.5)
    pairs = list(zip(ours.state_dict().values(), ref.state_dict().values(), strict=True))
    assert all(a.shape == b.shape for a, b in pairs)
    for a, b in pairs:
        b.copy_(a)
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(ours(x), ref(x))


def test_resnet20_option_a_shortcut_subsamples_and_zero_pads():
    model = build_model("resnet20_bn")
    shortcut = model.stages.stage2.block1.shortcut
    assert isinstance(shortcut, ZeroPadShortcut) and not list(shortcut.parameters())
    x = torch.randn(2, 16, 32, 32)
    y = shortcut(x)
    assert y.shape == (2, 32, 16, 16)
    assert torch.equal(y[:, 8:24], x[:, :, ::2, ::2])
    assert not y[:, :8].any() and not y[:, 24:].any()
    assert model.stages.stage3.block1.shortcut(torch.randn(2, 32, 16, 16)).shape == (2, 64, 8, 8)


def test_resnet_initialization_is_kaiming_normal():
    torch.manual_seed(0)
    r18 = build_model("resnet18")
    w = r18.stages.stage4.block2.conv1.weight  # 512x512x3x3, fan_out = 512*9
    assert abs(w.std().item() / (2 / (512 * 9)) ** 0.5 - 1) < 0.01
    r20 = build_model("resnet20")
    w = r20.stages.stage3.block2.conv1.weight  # 64x64x3x3, fan_in = 64*9
    assert abs(w.std().item() / (2 / (64 * 9)) ** 0.5 - 1) < 0.03
    assert torch.count_nonzero(r20.fc.bias) == 0
    assert all(m.bias is None for m in r20.modules() if isinstance(m, nn.Conv2d))


def test_cnn3_dropout_keeps_module_names():
    with_dropout = build_model("cnn3")
    without = build_model("cnn3", dropout=0.0)
    assert isinstance(with_dropout.classifier.drop, nn.Dropout)
    assert with_dropout.classifier.drop.p == 0.5
    assert isinstance(without.classifier.drop, nn.Identity)
    assert list(with_dropout.state_dict()) == list(without.state_dict())
    assert with_dropout.classifier.fc.in_features == 2048


def test_lenet_layout():
    model = build_model("lenet_bn")
    assert model.features(torch.randn(2, 3, 32, 32)).shape == (2, 16, 6, 6)  # 576 features
    assert model.classifier.fc1.in_features == 576
    assert isinstance(model.classifier.norm1, nn.BatchNorm1d)
    conv_only = build_model("lenet", norm="bn", norm_placement="conv")
    assert isinstance(conv_only.classifier.norm1, nn.Identity)
    assert n_params(conv_only) == 82_030 + 2 * (8 + 16)


@pytest.mark.parametrize("name, options, message", [
    ("resnet18", {"stem": "tiny"}, "unknown stem 'tiny'"),
    ("resnet20", {"shortcut": "C"}, "unknown shortcut 'C'"),
    ("cnn3", {"dropout": 1.0}, "dropout must be in"),
    ("lenet", {"norm_placement": "fc"}, "unknown norm placement"),
    ("lenet", {"width": 0}, "width must be positive"),
    ("resnet20", {"norm": "group"}, "unknown normalization 'group'"),
])
def test_bad_options(name, options, message):
    with pytest.raises(ConfigError, match=message):
        build_model(name, **options)
