"""What a run learns: image classification (CIFAR-10) or the deep linear network's regression.

A task owns the data on the device, how batches are drawn, the loss, the accuracy (if any) and
the held-out evaluation; the sweep asks the model table which task a model belongs to.
"""

from __future__ import annotations

from typing import Callable, Iterator, Protocol

import torch
from torch import nn

from landscape.config import RecordConfig
from landscape.data import BatchOptions, BatchStream, DeviceImages, ImageData, eval_batches
from landscape.data import load_dataset
from landscape.data.gaussian import RegressionData, VectorStream, make_linear_regression
from landscape.data.images import DataIdentity
from landscape.errors import ConfigError
from landscape.models import MODELS
from landscape.models.dln import l2_loss
from landscape.train import LossFn, classification_correct

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

    def stream(self, seed: int) -> Stream: ...

    def example_input(self) -> torch.Tensor: ...

    def evaluate(self, model: nn.Module) -> tuple[float, float]: ...


class ImageClassification:
    name = IMAGE_CLASSIFICATION
    loss_fn = staticmethod(nn.functional.cross_entropy)
    correct_fn = staticmethod(classification_correct)
    # NHWC is what the conv kernels are fastest with, on CPU (oneDNN) and GPU (cuDNN) alike.
    memory_format = torch.channels_last

    def __init__(self, data: ImageData, options: BatchOptions, device: torch.device) -> None:
        if len(data.train_y) < options.batch_size:
            raise ConfigError(f"batch size {options.batch_size} is larger than the "
                              f"{len(data.train_y)} training images")
        self.identity = data.identity
        self.options = options
        self.train = DeviceImages(data.train_x, data.train_y, device)
        self.test = DeviceImages(data.test_x, data.test_y, device)

    def example_input(self) -> torch.Tensor:
        """Two images on the CPU, for shape inference."""
        return torch.zeros(2, 3, *self.train.x.shape[2:])

    def stream(self, seed: int) -> BatchStream:
        return BatchStream(self.train, self.options, seed=seed, memory_format=self.memory_format)

    def evaluate(self, model: nn.Module) -> tuple[float, float]:
        """Mean cross-entropy and accuracy on the held-out images, in eval mode."""
        model.eval()
        device = self.test.device
        total = torch.zeros((), dtype=torch.float64, device=device)
        correct = torch.zeros((), dtype=torch.int64, device=device)
        with torch.no_grad():
            for x, y in eval_batches(self.test, self.options, memory_format=self.memory_format):
                logits = model(x)
                total += nn.functional.cross_entropy(logits, y, reduction="sum").double()
                correct += (logits.argmax(1) == y).sum()
        n = len(self.test)
        return float(total) / n, int(correct) / n


class LinearRegression:
    name = LINEAR_REGRESSION
    loss_fn = staticmethod(l2_loss)
    correct_fn = None
    memory_format = torch.contiguous_format

    def __init__(self, data: RegressionData, batch_size: int, device: torch.device) -> None:
        self.identity = data.identity
        self.data = data
        self.batch_size = batch_size
        self.device = device
        self.test_x = torch.from_numpy(data.test_x).to(device)
        self.test_y = torch.from_numpy(data.test_y).to(device)

    def example_input(self) -> torch.Tensor:
        return torch.zeros(2, self.data.train_x.shape[1])

    def stream(self, seed: int) -> VectorStream:
        return VectorStream(self.data.train_x, self.data.train_y, batch_size=self.batch_size,
                            seed=seed, device=self.device)

    def evaluate(self, model: nn.Module) -> tuple[float, float]:
        """Held-out ℓ2 loss in eval mode; regression has no accuracy (NaN)."""
        model.eval()
        with torch.no_grad():
            loss = l2_loss(model(self.test_x), self.test_y)
        return float(loss), float("nan")


def task_of(model: str) -> str:
    return MODELS[model].task


def make_task(config: RecordConfig, device: torch.device,
              data: ImageData | RegressionData | None = None) -> Task:
    """The task of the config's models, with its data loaded (or `data` used) on `device`."""
    tasks = {task_of(m) for m in config.models}
    if len(tasks) > 1:
        raise ConfigError(
            f"models {', '.join(config.models)} do not learn the same task "
            f"({' and '.join(sorted(tasks))}); record them in separate files")
    (task,) = tasks
    if task == LINEAR_REGRESSION:
        if config.data_dir is not None:
            raise ConfigError("--data-dir has no meaning for the deep linear network, whose "
                              "data are synthetic")
        if data is None:
            data = make_linear_regression(n_train=config.subset or 1000, seed=config.seed)
        return LinearRegression(data, config.batch_size, device)
    if data is None:
        data = load_dataset(config.data_dir, download=config.download,
                            verify_md5=config.verify_md5, subset=config.subset)
    options = BatchOptions(batch_size=config.batch_size, mean=config.mean, std=config.std,
                           crop_padding=config.crop_padding, flip=config.flip)
    return ImageClassification(data, options, device)
