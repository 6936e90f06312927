"""What is trained (the models and their width) and on what (the data and its augmentation)."""

from __future__ import annotations

from dataclasses import dataclass

from landscape.errors import ConfigError, field_ref as ref
from landscape.models import check_model_name
from landscape.models._width import width_problem

IMAGE_CLASSIFICATION = "image-classification"  # the task of models that learn CIFAR-10
DATASETS = ("cifar10", "mnist")  # landscape.data.load_dataset reads these
# A padding wider than the images (32 or 28 pixels) crops mostly zeros, and a huge one makes
# every batch's padded copy exhaust memory.
MAX_CROP_PADDING = 32


@dataclass(frozen=True)
class ModelConfig:
    """The models of the record, each trained at every learning rate, and their options."""

    models: tuple[str, ...] = ("vgg", "vgg_bn")
    width: float = 1.0  # channel-width multiplier of the models (1: as published)
    dropout: float | None = None  # None: the model's own default

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
        problem = width_problem(self.width)
        if problem is not None:
            raise ConfigError(f"{ref('model.width')} {problem}")
        if self.dropout is not None and not 0 <= self.dropout < 1:
            raise ConfigError(f"{ref('model.dropout')} must be in [0, 1), got {self.dropout}")

    def options(self) -> dict:
        """The build_model options asked for beyond the model's own defaults (a model without
        such an option refuses it with a clear error)."""
        options = {} if self.width == 1.0 else {"width": self.width}
        if self.dropout is not None:
            options["dropout"] = self.dropout
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
        if not 0 <= self.crop_padding <= MAX_CROP_PADDING:
            raise ConfigError(f"{ref('data.crop_padding')} must be from 0 to "
                              f"{MAX_CROP_PADDING} pixels, got {self.crop_padding}")
        if not 0 <= self.erase_prob <= 1:
            raise ConfigError(f"{ref('data.erase_prob')} must be in [0, 1], got {self.erase_prob}")
        if self.val_split is not None and not 0 < self.val_split < 1:
            raise ConfigError(f"{ref('data.val_split')} must be a fraction in (0, 1), got "
                              f"{self.val_split}")
        if self.download and self.data_dir is None:
            raise ConfigError(f"{ref('data.download')} needs {ref('data.data_dir')} (where to put "
                              f"CIFAR-10)")
