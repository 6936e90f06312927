"""Presets: named starting points; explicit options override them and the record stores the
resolved values. `landscape presets` prints them. A preset is a flat dict of the record's flat
keys (see RecordConfig.to_dict), applied over the defaults' flat dict."""

from __future__ import annotations

from typing import Any

from landscape.config.recording import DEFAULT_TAP, FINAL_TAP, ProbeConfig
from landscape.errors import ConfigError

PAPER_ICS_LAYERS = ("features.stage2.conv1", "features.stage4.conv1", "features.stage5.conv2")
PAPER_ACTIVATION_LAYERS = ("features.stage3.norm1", "classifier.norm2")
PRESETS: dict[str, dict[str, Any]] = {
    "course": {
        "models": ("vgg", "vgg_bn"), "optimizer": "adam", "lrs": (1e-3, 2e-3, 5e-4, 1e-4),
        "momentum": 0.0, "weight_decay": 0.0, "batch_size": 128, "epochs": 20,
        "max_steps": None, "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5), "crop_padding": 0,
        "flip": False, "taps": (DEFAULT_TAP,), "probe": ProbeConfig(every=100),
    },
    "paper": {
        "models": ("vgg", "vgg_bn"), "optimizer": "sgd", "lrs": (0.1,), "momentum": 0.0,
        "weight_decay": 0.0, "batch_size": 128, "epochs": None, "max_steps": 15_000,
        "crop_padding": 0, "flip": False, "taps": (DEFAULT_TAP,),
        "probe": ProbeConfig(every=1, low=0.5, high=4.0, count=8),
        "ics_every": 100, "ics_layers": PAPER_ICS_LAYERS,
        "activation_every": 10, "activation_layers": PAPER_ACTIVATION_LAYERS,
    },
    "paper-dln": {
        "models": ("dln", "dln_bn"), "optimizer": "sgd", "lrs": (1e-6,), "momentum": 0.0,
        "weight_decay": 0.0, "batch_size": 1000, "epochs": None, "max_steps": 10_000,
        "eval_every": 100, "taps": (FINAL_TAP,),
        "probe": ProbeConfig(every=10, low=0.01, high=30.0, count=8, spacing="log"),
        "ics_every": 100, "ics_layers": ("layers.fc5", "layers.fc13", "layers.fc20"),
    },
    # The main job (`make demo`) at laptop size: the paper's setting (plain SGD at lr 0.1,
    # batch 128, the probe along the gradient = along the update) on the light VGG-A, three
    # seeds, so that each ratio comes with an interval. Reduced from the paper: the network
    # (vgg_light: 2 conv stages), the images (the embedded 1,599) and the steps.
    # No tap: the course's trajectory quantities are then of all parameters (from the norms
    # every step records), and the record stays a few MB; the last layer's gradients and
    # weight deltas at every step (`--tap last-linear`) would add 8 kB a step and run, 50 MB.
    "demo-paper": {
        "models": ("vgg_light", "vgg_light_bn"), "optimizer": "sgd", "lrs": (0.1,),
        "momentum": 0.0, "weight_decay": 0.0, "batch_size": 128, "epochs": None,
        "max_steps": 1000, "seeds": (0, 1, 2), "taps": (),
        "probe": ProbeConfig(every=20, low=0.5, high=4.0, count=8),
    },
    # The worked example of docs/experiments.md: demo-paper's setting with BatchNorm's placement
    # (after the convolutions only, or after every layer) and the batch size as axes, the
    # question of the reports that drew VGG's landscape at batch 128 and 256. Reduced: 200 steps
    # (18 runs, about 25 minutes on a loaded 2-core CPU).
    "demo-placement": {
        "models": ("vgg_light", "vgg_light_bn"), "optimizer": "sgd", "lrs": (0.1,),
        "momentum": 0.0, "weight_decay": 0.0, "batch_size": 128, "epochs": None,
        "max_steps": 200, "seeds": (0, 1, 2), "taps": (DEFAULT_TAP,),
        "probe": ProbeConfig(every=20, low=0.5, high=4.0, count=8),
        "axes": {"norm_placement": ("conv", "all"), "batch_size": (128, 256)},
    },
    # The course's four-lr Adam sweep beside it, probed along the update Adam takes. No tap,
    # as for demo-paper (with the last layer's: 40 MB).
    "demo-course": {
        "models": ("vgg_light", "vgg_light_bn"), "optimizer": "adam",
        "lrs": (1e-3, 2e-3, 5e-4, 1e-4), "momentum": 0.0, "weight_decay": 0.0,
        "batch_size": 128, "epochs": None, "max_steps": 200, "seeds": (0, 1, 2),
        "taps": (), "probe": ProbeConfig(every=20, direction="update"),
    },
    # The normalization question on a network from outside the table: torchvision's own
    # ResNet-18 (ImageNet stem, 11.2 M parameters) without normalization, with BatchNorm,
    # GroupNorm and LayerNorm (its BatchNorm layers replaced), the paper's plain SGD and probe
    # along the gradient, three seeds. Reduced (laptop size): the embedded 1,599 images, batch
    # 64, 60 steps, lr 0.02 (a fifth of the paper's: at 0.1 the GroupNorm twin's loss rose to 8
    # in 12 steps, at 0.05 with batch 16 to 16), the probe every 15 steps at 4 points
    # (docs/normalization.md: what it measured).
    "demo-norm": {
        "models": ("torchvision:resnet18",), "optimizer": "sgd", "lrs": (0.02,),
        "momentum": 0.0, "weight_decay": 0.0, "batch_size": 64, "epochs": None,
        "max_steps": 60, "seeds": (0, 1, 2), "taps": (DEFAULT_TAP,),
        "probe": ProbeConfig(every=15, low=0.5, high=4.0, count=4),
        "axes": {"norm": ("none", "bn", "gn", "ln")},
    },
}


# Every preset trains image models in one memory format, whatever the machine measures: the
# format timed faster can change with the machine's load, and the two formats round
# differently (chaotic training turns that into other numbers: docs/measurements.md §6).
# channels_last is what the presets' published numbers (README, docs) were made with.
for _values in PRESETS.values():
    _values.setdefault("memory_format", "channels_last")


def preset(name: str) -> dict[str, Any]:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; valid presets: {', '.join(PRESETS)}")
    return dict(PRESETS[name])
