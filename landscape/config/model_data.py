"""What is trained (the models and their width) and on what (the data and its augmentation)."""

from __future__ import annotations

from dataclasses import dataclass

from landscape.errors import ConfigError, field_ref as ref
from landscape.models import MODELS, check_model_name

IMAGE_CLASSIFICATION = "image-classification"  # the task of models that learn CIFAR-10
DATASETS = ("cifar10", "mnist")  # landscape.data.load_dataset reads these
NORM_PLACEMENTS = ("all", "conv")


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

    def __post_init__(self) -> None:
        object.__setattr__(self, "models", tuple(self.models))

    def validate(self) -> None:
        if not self.models:
            raise ConfigError("no model given", field="model.models")
        for name in self.models:
            check_model_name(name)
        if len(set(self.models)) != len(self.models):
            raise ConfigError(f"a model is listed twice: {', '.join(self.models)}",
                              field="model.models")
        if self.width <= 0:
            raise ConfigError(f"{ref('model.width')} must be positive, got {self.width}")
        if self.dropout is not None and not 0 <= self.dropout < 1:
            raise ConfigError(f"{ref('model.dropout')} must be in [0, 1), got {self.dropout}")
        if self.norm_placement is not None:
            if self.norm_placement not in NORM_PLACEMENTS:
                raise ConfigError(f"unknown {ref('model.norm_placement')} "
                                  f"{self.norm_placement!r}; valid: {', '.join(NORM_PLACEMENTS)}")
            plain = [m for m in self.models if MODELS[m].norm is None]
            if plain:
                raise ConfigError(f"{ref('model.norm_placement')} places a normalization; model "
                                  f"{plain[0]!r} has none (use e.g. {plain[0]}_bn)")

    def options(self) -> dict:
        """The build_model options asked for beyond the model's own defaults (a model without
        such an option refuses it with a clear error)."""
        options = {} if self.width == 1.0 else {"width": self.width}
        if self.dropout is not None:
            options["dropout"] = self.dropout
        for name in ("norm_placement",):
            if getattr(self, name) is not None:
                options[name] = getattr(self, name)
        return options


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

    def __post_init__(self) -> None:
        for name in ("mean", "std"):
            object.__setattr__(self, name, tuple(getattr(self, name)))

    def validate(self) -> None:
        if self.dataset not in DATASETS:
            raise ConfigError(f"unknown dataset {self.dataset!r}; valid: {', '.join(DATASETS)}",
                              field="data.dataset")
        if self.subset is not None and self.subset < 1:
            raise ConfigError(
                f"{ref('data.subset')} must be a positive number of images, got {self.subset}")
        if self.crop_padding < 0:
            raise ConfigError(f"crop padding must be >= 0, got {self.crop_padding}",
                              field="data.crop_padding")
        if not 0 <= self.erase_prob <= 1:
            raise ConfigError(f"{ref('data.erase_prob')} must be in [0, 1], got {self.erase_prob}")
        if self.val_split is not None and not 0 < self.val_split < 1:
            raise ConfigError(f"{ref('data.val_split')} must be a fraction in (0, 1), got "
                              f"{self.val_split}")
        if self.download and self.data_dir is None:
            raise ConfigError(f"{ref('data.download')} needs {ref('data.data_dir')} (where to put "
                              f"CIFAR-10)")
