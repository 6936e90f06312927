"""What is trained (the models and their width) and on what (the data and its augmentation)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from landscape.data import check_dataset_name
from landscape.config.field_types import check_field_types, check_finite
from landscape.errors import ConfigError, field_ref as ref
from landscape.models import MODELS, check_model_name, model_options_of, table_identity
from landscape.models._width import width_problem
from landscape.models.activations import check_activation
from landscape.models.norms import NORM_KINDS

IMAGE_CLASSIFICATION = "image-classification"  # the task of models that learn CIFAR-10
# Where the input normalization's mean and std come from: as given (mean, std), or the
# training split's own per-channel statistics, computed when the data are loaded (train).
NORMALIZE_FROM = ("given", "train")
# ColorJitter draws each factor from [max(0, 1 - v), 1 + v]: past 100 every image is one color
# already, and a huge v overflows the float32 draw ("to is out of bounds for float").
MAX_COLOR_JITTER = 100.0
# A padding wider than the images (32 or 28 pixels) crops mostly zeros, and a huge one makes
# every batch's padded copy exhaust memory.
MAX_CROP_PADDING = 32
NORM_PLACEMENTS = ("all", "conv")
# Named input normalizations, (mean, std) of pixels scaled to [0, 1]: the course's 0.5; CIFAR-10's
# per-channel statistics of its 50,000 training images; the same means with the stds (0.2023,
# ...) that pytorch-cifar and many reports copy (they are not the dataset's stds); none (only
# the scaling to [0, 1]).
NORMALIZATIONS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "half": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar10-legacy": ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
    "none": ((0.0,), (1.0,)),
}


@dataclass(frozen=True)
class ModelConfig:
    """The models of the record, each trained at every learning rate, and their options."""

    models: tuple[str, ...] = ("vgg", "vgg_bn")
    width: float = 1.0  # channel-width multiplier of the models (1: as published)
    dropout: float | None = None  # None: the model's own default
    # Where a normalized model normalizes: "all" (conv and hidden linear layers, vgg_bn's
    # default, the reports' strategy 2) or "conv" (conv layers only, strategy 1); None: the
    # model's default. Models without hidden linear layers have no such option.
    norm_placement: str | None = None
    activation: str | None = None  # None: the model's own (relu); see models.activations
    # Start every run from the weights another record kept: "OTHER.h5:RUN" or
    # "OTHER.h5:RUN@STEP" (STEP a number, final or best; landscape.sweep.init_from). None: the
    # model's own initialization (seeded).
    init_from: str | None = None
    # The normalization of every model (models.norms.NORM_KINDS: "none", "bn", "gn", "ln",
    # "in", "ws", the paper's variants): the table's models place it themselves, a model from
    # outside has its BatchNorm layers replaced (docs/normalization.md). None: each model's own.
    norm: str | None = None
    # Keyword options of the models' builders beyond the fields above (--model-option
    # KEY=VALUE): e.g. {"num_classes": 100} for torchvision:resnet18, {"stem": "imagenet"}.
    model_options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_field_types(self, "model.")  # first: types, then the rest
        object.__setattr__(self, "models", tuple(self.models))
        object.__setattr__(self, "model_options", dict(self.model_options))

    def validate(self) -> None:
        if not self.models:
            raise ConfigError("no model given", field="model.models")
        for name in self.models:
            check_model_name(name)
        if len(set(self.models)) != len(self.models):
            raise ConfigError(f"a model is listed twice: {', '.join(self.models)}",
                              field="model.models")
        problem = width_problem(self.width)
        if problem is not None:
            raise ConfigError(f"{ref('model.width')} {problem}")
        if self.dropout is not None and not 0 <= self.dropout < 1:
            raise ConfigError(f"{ref('model.dropout')} must be in [0, 1), got {self.dropout}")
        if self.activation is not None:
            check_activation(self.activation)
        if self.init_from is not None:
            path, sep, run = self.init_from.rpartition(":")
            if not (sep and path and run and run.partition("@")[0]):
                raise ConfigError(f"{ref('model.init_from')} takes RECORD.h5:RUN or "
                                  f"RECORD.h5:RUN@STEP, got {self.init_from!r}")
        self._validate_norm()
        # An option a model lacks would be ignored: refuse it. (width is checked when the model
        # is built, after the task: the DLN has none, and mixing it with images is the error.)
        # A model from outside the table is checked when it is built (before the record exists).
        for name in self.models:
            accepted = model_options_of(name)
            for option in self.options() if accepted is not None else ():
                if option != "width" and option not in accepted:
                    raise ConfigError(f"model {name!r} has no option {self._option_ref(option)}")

    def _option_ref(self, option: str) -> str:
        return (f"{ref('model.model_options')} {option}" if option in self.model_options
                else ref("model." + option))

    def _validate_norm(self) -> None:
        if self.norm is not None and self.norm not in NORM_KINDS:
            raise ConfigError(f"unknown {ref('model.norm')} {self.norm!r}; valid: "
                              f"{', '.join(NORM_KINDS)}")
        clash = sorted(set(self.model_options) & {"width", "dropout", "norm_placement",
                                                  "activation", "norm"})
        if clash:
            raise ConfigError(f"{ref('model.model_options')} {clash[0]}: set it with "
                              f"{ref('model.' + clash[0])}")
        if self.norm is not None:
            # Two models of one family with the same normalization are one network twice.
            families = [table_identity(m)[0] if m in MODELS else m for m in self.models]
            twice = next((f for f in families if families.count(f) > 1), None)
            if twice is not None:
                both = ", ".join(m for m, f in zip(self.models, families) if f == twice)
                raise ConfigError(f"{ref('model.norm')} gives every model the same "
                                  f"normalization: list one model of family {twice!r}, not "
                                  f"{both}")
        if self.norm_placement is not None:
            if self.norm_placement not in NORM_PLACEMENTS:
                raise ConfigError(f"unknown {ref('model.norm_placement')} "
                                  f"{self.norm_placement!r}; valid: {', '.join(NORM_PLACEMENTS)}")
            plain = [m for m in self.models if m not in MODELS or
                     (self.norm or MODELS[m].norm or "none") == "none"]
            if plain:
                hint = (f"(use e.g. {plain[0]}_bn)" if plain[0] in MODELS else
                        "(it places the normalization of the table's VGG and LeNet models)")
                raise ConfigError(f"{ref('model.norm_placement')} places a normalization; model "
                                  f"{plain[0]!r} has none {hint}")

    @staticmethod
    def option_fields() -> tuple[str, ...]:
        """The fields that are options of the models' builders (see `options`)."""
        return ("width", "dropout", "norm_placement", "activation", "norm")

    def options(self) -> dict:
        """The build_model options asked for beyond the model's own defaults (a model without
        such an option refuses it with a clear error)."""
        options = {} if self.width == 1.0 else {"width": self.width}
        for name in self.option_fields()[1:]:
            if getattr(self, name) is not None:
                options[name] = getattr(self, name)
        return {**options, **self.model_options}


@dataclass(frozen=True)
class DataConfig:
    """The training data: CIFAR-10 (embedded subset or a folder), a validation split, and the
    augmentation and normalization of every batch."""

    # None means the embedded subset; otherwise a folder with cifar-10-batches-py.
    data_dir: str | None = None
    download: bool = False
    verify_md5: bool = True
    subset: int | None = None  # use the first N training images
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    crop_padding: int = 0
    flip: bool = False
    erase_prob: float = 0.0  # random erasing: probability per image
    # Validation split held out of the training images (stratified, seeded by the seed).
    val_split: float | None = None
    # Which images: CIFAR-10, or MNIST (embedded: a split of the official MNIST test set).
    # A 1-channel dataset takes mean/std of one value (or three equal ones).
    dataset: str = "cifar10"
    # torchvision's own transforms, per image on the uint8 images after crop and flip
    # (data/augment.py): AutoAugment with the CIFAR-10 policy, a rotation by up to ±degrees,
    # and ColorJitter's (brightness, contrast, saturation); 0 switches each off.
    autoaugment: bool = False
    rotation: float = 0.0
    color_jitter: tuple[float, float, float] = (0.0, 0.0, 0.0)
    # Random erasing's range of rectangle areas, as fractions of the image.
    erase_scale: tuple[float, float] = (0.02, 0.33)
    # "given": normalize by mean and std; "train": by the training split's per-channel mean and
    # std (computed once the split is final, stored in the record's data; --normalize train).
    normalize_from: str = "given"

    def __post_init__(self) -> None:
        check_field_types(self, "data.")  # first: types, then the rest
        for name in ("mean", "std", "color_jitter", "erase_scale"):
            object.__setattr__(self, name, tuple(getattr(self, name)))

    def validate(self) -> None:
        check_dataset_name(self.dataset)
        if self.dataset.startswith("imagefolder:") and self.data_dir is not None:
            raise ConfigError(f"{ref('data.dataset')} imagefolder:PATH names its folder; "
                              f"{ref('data.data_dir')} has no meaning with it")
        if self.normalize_from not in NORMALIZE_FROM:
            raise ConfigError(f"{ref('data.normalize_from')} must be one of "
                              f"{', '.join(NORMALIZE_FROM)}, got {self.normalize_from!r}")
        if self.normalize_from == "train" and (self.mean, self.std) != (DataConfig.mean,
                                                                         DataConfig.std):
            raise ConfigError(f"{ref('data.normalize_from')} train takes the training split's "
                              f"mean and std; give it or {ref('data.mean')}/{ref('data.std')}, "
                              f"not both")
        if self.subset is not None and self.subset < 1:
            raise ConfigError(
                f"{ref('data.subset')} must be a positive number of images, got {self.subset}")
        if not 0 <= self.crop_padding <= MAX_CROP_PADDING:
            raise ConfigError(f"{ref('data.crop_padding')} must be from 0 to "
                              f"{MAX_CROP_PADDING} pixels, got {self.crop_padding}")
        if not 0 <= self.erase_prob <= 1:
            raise ConfigError(f"{ref('data.erase_prob')} must be in [0, 1], got {self.erase_prob}")
        self._validate_augmentation()
        if self.val_split is not None and not 0 < self.val_split < 1:
            raise ConfigError(f"{ref('data.val_split')} must be a fraction in (0, 1), got "
                              f"{self.val_split}")
        if len(self.mean) != len(self.std):
            raise ConfigError(f"{ref('data.mean')} has {len(self.mean)} values and "
                              f"{ref('data.std')} {len(self.std)}; give as many of each")
        if any(not s > 0 for s in self.std):
            raise ConfigError(f"{ref('data.std')} must be positive, got "
                              f"{','.join(f'{s:g}' for s in self.std)}")
        if self.download and self.data_dir is None:
            raise ConfigError(f"{ref('data.download')} needs {ref('data.data_dir')} (where to put "
                              f"the data set)")

    def _validate_augmentation(self) -> None:
        low, high = self.erase_scale if len(self.erase_scale) == 2 else (-1, -1)
        if not 0 < low <= high <= 1:
            raise ConfigError(f"{ref('data.erase_scale')} takes LOW,HIGH fractions of the image "
                              f"with 0 < LOW <= HIGH <= 1, got "
                              f"{','.join(map(str, self.erase_scale))}")
        if self.erase_scale != (0.02, 0.33) and not self.erase_prob:
            raise ConfigError(f"{ref('data.erase_scale')} needs {ref('data.erase_prob')} > 0")
        if not (0 <= self.rotation <= 180):
            raise ConfigError(f"{ref('data.rotation')} must be degrees in [0, 180], got "
                              f"{self.rotation}")
        if len(self.color_jitter) != 3 or any(not 0 <= v for v in self.color_jitter):
            raise ConfigError(f"{ref('data.color_jitter')} takes BRIGHTNESS,CONTRAST,SATURATION "
                              f">= 0, got {','.join(map(str, self.color_jitter))}")
        if any(not v <= MAX_COLOR_JITTER for v in self.color_jitter):
            raise ConfigError(f"{ref('data.color_jitter')} takes BRIGHTNESS,CONTRAST,SATURATION "
                              f"from 0 to {MAX_COLOR_JITTER:g} (each factor is drawn from "
                              f"[max(0, 1 - v), 1 + v]), got "
                              f"{','.join(map(str, self.color_jitter))}")

    @property
    def augments(self) -> bool:
        """Whether any augmentation is on (the validation and held-out images never are)."""
        return bool(self.crop_padding or self.flip or self.erase_prob or self.autoaugment
                    or self.rotation or any(self.color_jitter))
