"""Batches built on the device from uint8 images with tensor ops.

The whole dataset lives on the device as uint8 (4x smaller than float32, and converting a batch
costs less than moving it); shuffling, augmentation and normalization are batched tensor ops,
never per-image PIL transforms. All randomness comes from one seeded CPU generator, so the
batches are the same on every device and the stream's position can be saved and restored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from landscape.data.augment import ERASE_AREA, apply_seeded, erase, erase_boxes, image_seeds
from landscape.data.augment import policy_transform
from landscape.errors import ConfigError


@dataclass(frozen=True)
class BatchOptions:
    batch_size: int = 128
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)  # of pixels scaled to [0, 1]
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    crop_padding: int = 0  # random crop after zero padding by this many pixels (0: no crop)
    flip: bool = False  # random horizontal flip
    erase_prob: float = 0.0  # random erasing: probability per image (see data/augment.py)
    erase_scale: tuple[float, float] = ERASE_AREA  # its range of areas (fractions of the image)
    # torchvision's transforms per image (see data/augment.py): off by default.
    autoaugment: bool = False
    rotation: float = 0.0
    color_jitter: tuple[float, float, float] = (0.0, 0.0, 0.0)
    drop_last: bool = True  # equal batch sizes: every step of every run sees `batch_size` images

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ConfigError(f"batch size must be positive, got {self.batch_size}")
        if self.crop_padding < 0:
            raise ConfigError(f"crop padding must be >= 0, got {self.crop_padding}")
        if not 0 <= self.erase_prob <= 1:
            raise ConfigError(f"--erase-prob must be in [0, 1], got {self.erase_prob}")
        if any(s <= 0 for s in self.std):
            raise ConfigError(f"normalization std must be positive, got {self.std}")


class DeviceImages:
    """uint8 images [N, C, H, W] (C = 3 for CIFAR-10, 1 for MNIST) and int64 labels [N], resident
    on `device`."""

    def __init__(self, x: np.ndarray, y: np.ndarray, device: torch.device) -> None:
        self.x = torch.from_numpy(np.ascontiguousarray(x)).to(device)
        self.y = torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64)).to(device)
        self.device = torch.device(device)

    def __len__(self) -> int:
        return len(self.y)


class BatchStream:
    """Seeded epochs of augmented, normalized batches.

    `steps_per_epoch` batches per epoch; with `drop_last` the last incomplete batch of an epoch
    is dropped (it would otherwise give BN a batch of a different size); every epoch is a fresh
    permutation, so no image is dropped forever.
    """

    def __init__(self, images: DeviceImages, options: BatchOptions, *, seed: int,
                 memory_format: torch.memory_format = torch.contiguous_format) -> None:
        n = len(images)
        if options.drop_last and n < options.batch_size:
            raise ConfigError(
                f"batch size {options.batch_size} is larger than the {n} training images"
            )
        self.images = images
        self.options = options
        self.memory_format = memory_format
        self.generator = torch.Generator().manual_seed(seed)
        self._epoch_start = self.generator.get_state()
        self._consumed = 0
        self._skip = 0
        device = images.device
        self._mean = torch.tensor(options.mean, device=device).view(1, -1, 1, 1) * 255
        self._std = torch.tensor(options.std, device=device).view(1, -1, 1, 1) * 255
        self._policy = policy_transform(autoaugment=options.autoaugment,
                                        rotation=options.rotation,
                                        color_jitter=options.color_jitter)

    @property
    def steps_per_epoch(self) -> int:
        n, b = len(self.images), self.options.batch_size
        return n // b if self.options.drop_last else -(-n // b)

    def state(self) -> dict:
        """Where the stream is: the generator state at the start of the current epoch and how
        many of its batches were taken. `restore` continues from exactly there."""
        return {"generator": self._epoch_start.clone(), "consumed": self._consumed}

    def restore(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self._skip = state["consumed"]

    def epoch(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One pass over the images in a fresh seeded order: (float images, labels) per batch.

        The epoch's random draws (order, crop offsets, flips, erased rectangles, the seeds of
        torchvision's transforms) are made up
        front and copied to the device once: a host-to-device copy per batch would wait for the
        GPU every step.
        """
        self._epoch_start = self.generator.get_state()
        skip, self._skip = self._skip, 0
        self._consumed = skip
        n_used = self.steps_per_epoch * self.options.batch_size
        order = torch.randperm(len(self.images), generator=self.generator)[:n_used]
        draws = {"order": order}
        if self.options.crop_padding:
            span = 2 * self.options.crop_padding + 1
            draws["dy"] = torch.randint(0, span, (n_used,), generator=self.generator)
            draws["dx"] = torch.randint(0, span, (n_used,), generator=self.generator)
        if self.options.flip:
            draws["flip"] = torch.rand(n_used, generator=self.generator) < 0.5
        if self.options.erase_prob:
            height, width = self.images.x.shape[2:]
            draws["erase"] = erase_boxes(n_used, self.generator, p=self.options.erase_prob,
                                         height=height, width=width,
                                         area=self.options.erase_scale)
        if self._policy is not None:  # drawn last: the other draws stay those of older records
            draws["seeds"] = image_seeds(n_used, self.generator)
        # The seeds stay on the CPU: the transforms read them one by one on the host.
        draws = {k: v if k == "seeds" else v.to(self.images.device) for k, v in draws.items()}
        b = self.options.batch_size
        for i in range(skip, self.steps_per_epoch):
            part = {k: v[i * b:(i + 1) * b] for k, v in draws.items()}
            idx = part["order"]
            self._consumed = i + 1
            yield self.make_batch(self.images.x[idx], part), self.images.y[idx]

    def batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Epoch after epoch, without end."""
        while True:
            yield from self.epoch()

    def make_batch(self, x: torch.Tensor, draws: dict[str, torch.Tensor]) -> torch.Tensor:
        """uint8 [B, 3, H, W] -> augmented, normalized float32 in the stream's memory format."""
        if self.options.crop_padding:
            x = random_crop(x, self.options.crop_padding, draws["dy"], draws["dx"])
        if self.options.flip:
            x = random_flip(x, draws["flip"])
        if self._policy is not None:
            x = apply_seeded(self._policy, x, draws["seeds"])
        # Normalizing in pixel units saves a division by 255 over the batch.
        x = (x.float() - self._mean) / self._std
        if self.options.erase_prob:
            x = erase(x, draws["erase"], 0.0)  # 0 after normalization: the mean pixel
        return x.contiguous(memory_format=self.memory_format)


def random_crop(x: torch.Tensor, padding: int, dy: torch.Tensor, dx: torch.Tensor
                ) -> torch.Tensor:
    """Crops of the zero-padded batch back to the original size, image i at offset
    (dy[i], dx[i]) with offsets in [0, 2 * padding]."""
    n, c, h, w = x.shape
    padded = torch.nn.functional.pad(x, (padding, padding, padding, padding))
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]  # (n, 1, h, 1)
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]  # (n, 1, 1, w)
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    channel = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, channel, rows, cols]


def random_flip(x: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """Flip image i left-right where flip[i] is True."""
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def eval_batches(images: DeviceImages, options: BatchOptions, *, batch_size: int = 500,
                 memory_format: torch.memory_format = torch.contiguous_format
                 ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """All images in order, normalized, not augmented (for accuracy and loss evaluation)."""
    mean = torch.tensor(options.mean, device=images.device).view(1, -1, 1, 1) * 255
    std = torch.tensor(options.std, device=images.device).view(1, -1, 1, 1) * 255
    for start in range(0, len(images), batch_size):
        x = images.x[start:start + batch_size]
        x = ((x.float() - mean) / std).contiguous(memory_format=memory_format)
        yield x, images.y[start:start + batch_size]
