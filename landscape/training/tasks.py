"""What a run learns: image classification (CIFAR-10) or the deep linear network's regression.

A task owns the data on the device, how batches are drawn, the loss, the accuracy (if any) and
the held-out evaluation; the sweep asks the model table which task a model belongs to.
"""

from __future__ import annotations

import copy
from typing import Callable, Iterator, Protocol, Sequence

import torch
from torch import nn

from landscape.config import RecordConfig
from landscape.data import BatchOptions, BatchStream, DeviceImages, ImageData, eval_batches
from landscape.data import hold_out_validation, load_dataset, with_train_stats
from landscape.data.gaussian import RegressionData, VectorStream, make_linear_regression
from landscape.data.images import DataIdentity
from landscape.errors import ConfigError, field_ref
from landscape.training.losses import summed_loss, training_loss
from landscape.models import model_task
from landscape.models.dln import l2_loss
from landscape.training.contracts import LossFn
from landscape.training.loop_settings import classification_correct

IMAGE_CLASSIFICATION = "image-classification"
LINEAR_REGRESSION = "linear-regression"


class Stream(Protocol):
    steps_per_epoch: int

    def batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]: ...


class Task(Protocol):
    name: str
    identity: DataIdentity
    loss_fn: LossFn
    correct_fn: Callable | None
    memory_format: torch.memory_format
    # (loss, accuracy) on the validation split in eval mode; None without one.
    validate: Callable[[nn.Module], tuple[float, float]] | None

    def stream(self, seed: int) -> Stream: ...

    def example_input(self) -> torch.Tensor: ...

    def evaluate(self, model: nn.Module) -> tuple[float, float]: ...

    def using(self, memory_format: torch.memory_format) -> "Task": ...


def _with_memory_format(task, memory_format: torch.memory_format):
    """A shallow copy of `task` (the same device data) whose batches come in `memory_format`."""
    if memory_format == task.memory_format:
        return task
    other = copy.copy(task)
    other.memory_format = memory_format
    return other


class ImageClassification:
    """CIFAR-10 classification. The training loss is `loss` (landscape.training.losses; by default
    cross-entropy) with `label_smoothing` (torch's definition: the target puts 1 − ε + ε/10 on
    the label and ε/10 on every other class); held-out and validation losses are the same loss
    without smoothing, comparable across records of that loss."""

    name = IMAGE_CLASSIFICATION
    correct_fn = staticmethod(classification_correct)
    # NHWC unless told otherwise: record trains in the format landscape.training.tuning measured to be
    # faster on the machine (`using`); NHWC is usually faster on GPUs, not always on CPUs.
    memory_format = torch.channels_last

    def __init__(self, data: ImageData, options: BatchOptions, device: torch.device, *,
                 label_smoothing: float = 0.0, loss: str = "cross_entropy") -> None:
        if len(data.train_y) < options.batch_size:
            raise ConfigError(f"batch size {options.batch_size} is larger than the "
                              f"{len(data.train_y)} training images")
        self.identity = data.identity
        self.num_classes = data.identity.num_classes
        self.options = options
        self.loss_name = loss
        self.label_smoothing = label_smoothing
        self.loss_fn: LossFn = training_loss(loss, label_smoothing=label_smoothing)
        self.train = DeviceImages(data.train_x, data.train_y, device)
        self.test = DeviceImages(data.test_x, data.test_y, device)
        self.val = None if data.val_x is None else DeviceImages(data.val_x, data.val_y, device)
        self.validate = None if self.val is None else self._validate

    using = _with_memory_format

    def example_input(self) -> torch.Tensor:
        """Two images on the CPU, for shape inference."""
        return torch.zeros(2, *self.train.x.shape[1:])

    def stream(self, seed: int) -> BatchStream:
        return BatchStream(self.train, self.options, seed=seed, memory_format=self.memory_format)

    def evaluate(self, model: nn.Module) -> tuple[float, float]:
        """Mean loss (unsmoothed) and accuracy on the held-out images, in eval mode."""
        return self._loss_and_accuracy(model, self.test)

    def _validate(self, model: nn.Module) -> tuple[float, float]:
        """Mean loss (unsmoothed) and accuracy on the validation images, in eval mode."""
        return self._loss_and_accuracy(model, self.val)

    def _loss_and_accuracy(self, model: nn.Module, images: DeviceImages) -> tuple[float, float]:
        model.eval()
        device = images.device
        total = torch.zeros((), dtype=torch.float64, device=device)
        correct = torch.zeros((), dtype=torch.int64, device=device)
        with torch.no_grad():
            for x, y in eval_batches(images, self.options, memory_format=self.memory_format):
                logits = model(x)
                total += summed_loss(self.loss_name, logits, y).double()
                correct += (logits.argmax(1) == y).sum()
        n = len(images)
        return float(total) / n, int(correct) / n


class LinearRegression:
    name = LINEAR_REGRESSION
    loss_fn = staticmethod(l2_loss)
    correct_fn = None
    num_classes = None  # regression
    memory_format = torch.contiguous_format
    validate = None

    def __init__(self, data: RegressionData, batch_size: int, device: torch.device) -> None:
        self.identity = data.identity
        self.data = data
        self.batch_size = batch_size
        self.device = device
        self.test_x = torch.from_numpy(data.test_x).to(device)
        self.test_y = torch.from_numpy(data.test_y).to(device)

    def using(self, memory_format: torch.memory_format) -> "LinearRegression":
        return self  # vectors have one layout

    def example_input(self) -> torch.Tensor:
        return torch.zeros(2, self.data.train_x.shape[1])

    def stream(self, seed: int) -> VectorStream:
        return VectorStream(self.data.train_x, self.data.train_y, batch_size=self.batch_size,
                            seed=seed, device=self.device)

    def evaluate(self, model: nn.Module) -> tuple[float, float]:
        """Held-out ℓ2 loss (summed over the held-out samples, like the training loss over its
        batch) in eval mode; regression has no accuracy (NaN)."""
        model.eval()
        with torch.no_grad():
            loss = l2_loss(model(self.test_x), self.test_y)
        return float(loss), float("nan")


def task_of(model: str) -> str:
    return model_task(model)


def data_shape(task) -> dict:
    """What a model takes from the data (`build_model`'s `data_classes` and `data_channels`):
    the classes and channels of an image task, nothing for the deep linear network's."""
    classes = getattr(task, "num_classes", None)
    if classes is None:
        return {}
    return {"data_classes": classes, "data_channels": int(task.example_input().shape[1])}


def make_task(config: RecordConfig, device: torch.device,
              data: ImageData | RegressionData | None = None) -> Task:
    """The task of the config's models, with its data loaded (or `data` used) on `device`."""
    models, data_config, optim = config.model.models, config.data, config.optim
    tasks = {task_of(m) for m in models}
    if len(tasks) > 1:
        raise ConfigError(
            f"models {', '.join(models)} do not learn the same task "
            f"({' and '.join(sorted(tasks))}); record them in separate files",
            field="model.models")
    (task,) = tasks
    if task == LINEAR_REGRESSION:
        if data_config.data_dir is not None:
            raise ConfigError(f"{field_ref('data.data_dir')} has no meaning for the deep linear "
                              f"network, whose data are synthetic")
        if data is None:
            data = make_linear_regression(n_train=data_config.subset or 1000, seed=config.seed)
        return LinearRegression(data, optim.batch_size, device)
    if data is None:
        data = load_dataset(data_config.data_dir, download=data_config.download,
                            verify_md5=data_config.verify_md5, subset=data_config.subset,
                            dataset=data_config.dataset)
    if data_config.val_split is not None:
        data = hold_out_validation(data, data_config.val_split, seed=config.seed)
    data = with_train_stats(data)  # of the images trained on: --normalize train uses them
    options = batch_options(config, data.identity)
    return ImageClassification(data, options, device, label_smoothing=optim.label_smoothing,
                               loss=optim.loss)


def batch_options(config: RecordConfig, identity: DataIdentity) -> BatchOptions:
    """How `config` draws, augments and normalizes its batches of the images `identity`
    describes (its channels; with --normalize train, the training split's mean and std)."""
    data_config = config.data
    if data_config.normalize_from == "train":
        mean, std = identity.train_mean, identity.train_std
    else:
        channels = len(identity.train_mean)
        mean = per_channel(data_config.mean, channels, "data.mean")
        std = per_channel(data_config.std, channels, "data.std")
    return BatchOptions(batch_size=config.optim.batch_size, mean=mean, std=std,
                        crop_padding=data_config.crop_padding,
                        flip=data_config.flip, erase_prob=data_config.erase_prob,
                        erase_scale=data_config.erase_scale,
                        autoaugment=data_config.autoaugment, rotation=data_config.rotation,
                        color_jitter=data_config.color_jitter)


def for_run(task: Task, config: RecordConfig) -> Task:
    """`task` as the run configured by `config` trains on it (a run of a record with axes may
    differ from the record in its batch size, augmentation, normalization or label smoothing):
    a shallow copy sharing the data on the device, or `task` itself where nothing differs."""
    if isinstance(task, LinearRegression):
        if task.batch_size == config.optim.batch_size:
            return task
        other = copy.copy(task)
        other.batch_size = config.optim.batch_size
        return other
    options = batch_options(config, task.identity)
    smoothing, loss = config.optim.label_smoothing, config.optim.loss
    if (options, smoothing, loss) == (task.options, task.label_smoothing, task.loss_name):
        return task
    if len(task.train) < options.batch_size:
        raise ConfigError(f"batch size {options.batch_size} is larger than the "
                          f"{len(task.train)} training images")
    other = copy.copy(task)
    other.options, other.label_smoothing, other.loss_name = options, smoothing, loss
    other.loss_fn = training_loss(loss, label_smoothing=smoothing)
    return other


def per_channel(values: tuple[float, ...], channels: int, field: str) -> tuple[float, ...]:
    """Normalization values for `channels` channels: as given, or one value (or several equal
    ones, like the default 0.5, 0.5, 0.5) repeated for a dataset with another channel count."""
    if len(values) == channels:
        return tuple(values)
    if len(set(values)) == 1:
        return (values[0],) * channels
    raise ConfigError(f"{field_ref(field)} has {len(values)} values for images with {channels} "
                      f"channel(s); give {channels}")


def penalized(loss_fn: LossFn, params: Sequence[torch.Tensor], *, l1: float = 0.0,
              l2: float = 0.0) -> LossFn:
    """The objective `loss_fn(output, y) + l1·Σ|w| + (l2/2)·Σw²` over `params`, read at their
    values when it is called (so a probe that moves the weights sees the penalty move too).

    Without penalties `loss_fn` itself is returned. The sums are per-tensor foreach norms (one
    kernel per kind, no Python loop over the parameters); the penalty's gradient, l1·sign(w) +
    l2·w, comes from autograd along with the data loss's.
    """
    if not (l1 or l2):
        return loss_fn
    params = list(params)

    def objective(output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return add_penalty(loss_fn(output, y), params, l1=l1, l2=l2)

    return objective


def add_penalty(total: torch.Tensor, params: Sequence[torch.Tensor], *, l1: float,
                l2: float) -> torch.Tensor:
    """`total` + l1·Σ|w| + (l2/2)·Σw² over `params`, added in that order (the order is part of
    the recorded numbers): the penalty of the training objective, shared by training, probes
    and loss surfaces."""
    if l1:
        total = total + l1 * torch.stack(torch._foreach_norm(params, 1)).sum()
    if l2:
        total = total + 0.5 * l2 * torch.stack(torch._foreach_norm(params, 2)).square().sum()
    return total
