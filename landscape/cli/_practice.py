"""`landscape record`'s options of common training practice (issue 20): activation, norm
placement, loss, Adam's betas, stopping on validation accuracy, input normalization and
torchvision's augmentations. Kept apart from record.py so that these flags, their defaults and
their mapping to the config fields live in one place."""

from __future__ import annotations

import click

from landscape.cli._types import CommaList
from landscape.config import RecordConfig
from landscape.config.model_data import NORM_PLACEMENTS, NORMALIZATIONS
from landscape.config.optim import EARLY_STOP_METRICS, LOSSES
from landscape.errors import ConfigError
from landscape.models.activations import ACTIVATIONS

_DEFAULT = RecordConfig()
TRAIN_STATS = "train"  # --normalize train: the training split's statistics

_OPTIONS = [
    click.option("--activation", type=click.Choice(ACTIVATIONS), default=None,
                 help="The nonlinearity of every image model (leaky_relu: slope 0.01; swish is "
                      "silu) [default: the model's own, relu]."),
    click.option("--norm-placement", type=click.Choice(NORM_PLACEMENTS), default=None,
                 help="Where a normalized VGG or LeNet normalizes: after every conv and hidden "
                      "linear layer (all) or after the convs only (conv) [default: all]."),
    click.option("--loss", type=click.Choice(LOSSES), default=_DEFAULT.optim.loss,
                 show_default=True,
                 help="The training loss: cross_entropy; nll (of log-softmax: the same "
                      "number); mse (of the logits to one-hot targets). Held-out losses use "
                      "it too, unsmoothed; the probes measure it."),
    click.option("--betas", type=CommaList(float, length=2, length_hint="BETA1,BETA2"),
                 default=None, help="adam, adamw: the betas, e.g. 0.9,0.999 [default: "
                                    "torch's]."),
    click.option("--early-stop-on", "early_stop_metric", type=click.Choice(EARLY_STOP_METRICS),
                 default=_DEFAULT.optim.early_stop_metric, show_default=True,
                 help="What --early-stop watches on the validation split: its loss or its "
                      "accuracy."),
    click.option("--early-stop-min-delta", type=float,
                 default=_DEFAULT.optim.early_stop_min_delta, show_default=True,
                 help="The least change of the watched value that counts as an improvement."),
    click.option("--init-from", type=str, default=None,
                 help="Start every run from the weights another record kept: RECORD.h5:RUN "
                      "or RECORD.h5:RUN@STEP (STEP: a number, final or best) [default: the "
                      "model's own seeded initialization]. E.g. pretrain with sgd, then "
                      "continue with --optimizer slbi."),
    click.option("--keep-best", is_flag=True,
                 help="Keep the weights at every evaluation that improves the validation "
                      "accuracy (needs --val-split): `landscape surface/prune --step best`."),
    click.option("--normalize", "normalization",
                 type=click.Choice([*NORMALIZATIONS, TRAIN_STATS]), default=None,
                 help="Named input mean/std: half (0.5, the default), cifar10 (the dataset's "
                      "own: std 0.2470,0.2435,0.2616), cifar10-legacy (std 0.2023,0.1994,"
                      "0.2010, as many reports), none (pixels in [0, 1]), train (the training "
                      "split's own per-channel mean and std, computed and stored)."),
    click.option("--mean", type=CommaList(float), default=None,
                 help="Per-channel input mean of pixels in [0, 1], e.g. 0.4914,0.4822,0.4465."),
    click.option("--std", type=CommaList(float), default=None,
                 help="Per-channel input std of pixels in [0, 1], e.g. 0.2470,0.2435,0.2616."),
    click.option("--autoaugment", is_flag=True,
                 help="torchvision's AutoAugment with the CIFAR-10 policy, per image, seeded."),
    click.option("--rotation", type=float, default=_DEFAULT.data.rotation, show_default=True,
                 help="torchvision's RandomRotation by up to +-DEGREES (0: off)."),
    click.option("--color-jitter", type=CommaList(float, length=3,
                                                  length_hint="BRIGHTNESS,CONTRAST,SATURATION"),
                 default=None, help="torchvision's ColorJitter, e.g. 0.2,0.2,0.2 [default: "
                                    "off]."),
    click.option("--erase-scale", type=CommaList(float, length=2, length_hint="LOW,HIGH"),
                 default=None, help="Random erasing's range of areas, fractions of the image "
                                    "[default: 0.02,0.33]."),
]
# The click parameters these options add (build_config hands the others to the config as is).
NORMALIZATION_OPTIONS = ("normalization", "mean", "std")


def practice_options(command):
    """Decorate a command with the options of this module."""
    for option in reversed(_OPTIONS):
        command = option(command)
    return command


def normalization_values(options: dict, given: set[str]) -> dict:
    """The config's mean and std from --normalize or --mean/--std (not both)."""
    name = options.get("normalization") if "normalization" in given else None
    explicit = {k: options[k] for k in ("mean", "std") if k in given and options[k] is not None}
    if name is not None and explicit:
        raise ConfigError(f"give --normalize or --{'/--'.join(explicit)}, not both")
    if name == TRAIN_STATS:
        return {"normalize_from": "train", "mean": _DEFAULT.data.mean, "std": _DEFAULT.data.std}
    if name is not None:
        mean, std = NORMALIZATIONS[name]
        return {"mean": mean, "std": std, "normalize_from": "given"}
    return explicit
