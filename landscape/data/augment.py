"""Random erasing (Zhong et al., 2020) as batched tensor ops, and torchvision's AutoAugment,
rotation and colour jitter seeded per image.

The random draws are made for a whole epoch at once on the CPU generator (with the stream's
other draws) and turned into one rectangle per image there; the device only builds masks. So
the batches are the same on every device, and a restored stream repeats them exactly.
"""

from __future__ import annotations

import math

import torch

# The rectangle's area as a fraction of the image, and its aspect ratio height / width (drawn
# log-uniformly): torchvision's RandomErasing defaults.
ERASE_AREA = (0.02, 0.33)
ERASE_ASPECT = (0.3, 3.3)


def erase_boxes(n: int, generator: torch.Generator, *, p: float, height: int, width: int,
                area: tuple[float, float] = ERASE_AREA) -> torch.Tensor:
    """One rectangle per image, int64 [n, 4] as (top, left, bottom, right), end-exclusive.

    With probability `p` an image gets a rectangle of area s·H·W, s ~ U[area] (by default
    [0.02, 0.33]), and aspect
    ratio r = h / w, log r ~ U[log 0.3, log 3.3]: h = round(√(s r) H), w = round(√(s / r) W),
    each clipped to [1, H] (resp. [1, W]), at a uniformly random position inside the image.
    Other images get an empty rectangle (bottom = top). Always draws 5·n numbers, whatever the
    outcome, so the generator advances by the same amount every epoch.
    """
    u = torch.rand((5, n), generator=generator, dtype=torch.float64)
    area = (area[0] + (area[1] - area[0]) * u[1]) * (height * width)
    low, high = math.log(ERASE_ASPECT[0]), math.log(ERASE_ASPECT[1])
    ratio = torch.exp(low + (high - low) * u[2])
    h = torch.sqrt(area * ratio).round().clamp(1, height).long()
    w = torch.sqrt(area / ratio).round().clamp(1, width).long()
    top = (u[3] * (height - h + 1)).long()  # uniform in [0, H − h]
    left = (u[4] * (width - w + 1)).long()
    h = torch.where(u[0] < p, h, torch.zeros_like(h))
    return torch.stack([top, left, top + h, left + w], dim=1)


def erase(x: torch.Tensor, boxes: torch.Tensor, value: float = 0.0) -> torch.Tensor:
    """Set the pixels of image i inside boxes[i] (all channels) to `value`, in place.

    x: float [B, C, H, W]; boxes: int64 [B, 4] (top, left, bottom, right) on x's device.
    """
    _, _, h, w = x.shape
    rows = torch.arange(h, device=x.device)[None, :, None]  # (1, h, 1)
    cols = torch.arange(w, device=x.device)[None, None, :]  # (1, 1, w)
    top, left, bottom, right = (boxes[:, k, None, None] for k in range(4))  # (B, 1, 1) each
    mask = (rows >= top) & (rows < bottom) & (cols >= left) & (cols < right)  # (B, h, w)
    return x.masked_fill_(mask[:, None], value)


# ---- torchvision's own transforms, seeded per image -------------------------------------------
# AutoAugment, RandomRotation and ColorJitter draw their parameters from torch's global CPU
# generator and take one image at a time (given a batch they would apply one draw to all of
# it). So each image gets a seed drawn with the epoch's other draws, and the transforms run
# under `fork_rng` seeded with it: the batches are a function of the stream's seed and position
# (a resumed stream repeats them), and the global state that dropout and noise draw from is left
# as it was.


def policy_transform(*, autoaugment: bool, rotation: float,
                     color_jitter: tuple[float, float, float]):
    """torchvision's transforms for uint8 images [C, H, W], in this order: AutoAugment (CIFAR-10
    policy), RandomRotation(±rotation degrees, black fill), ColorJitter(brightness, contrast,
    saturation); None when all are off."""
    from torchvision.transforms import v2  # imported here: only runs with these options need it

    steps = []
    if autoaugment:
        steps.append(v2.AutoAugment(v2.AutoAugmentPolicy.CIFAR10))
    if rotation:
        steps.append(v2.RandomRotation(rotation))
    if any(color_jitter):
        brightness, contrast, saturation = color_jitter
        steps.append(v2.ColorJitter(brightness=brightness, contrast=contrast,
                                    saturation=saturation))
    return v2.Compose(steps) if steps else None


def image_seeds(n: int, generator: torch.Generator) -> torch.Tensor:
    """One seed per image (int64 [n]) for `apply_seeded`."""
    return torch.randint(0, 2 ** 62, (n,), generator=generator, dtype=torch.int64)


def apply_seeded(transform, x: torch.Tensor, seeds: torch.Tensor) -> torch.Tensor:
    """`transform` applied to each uint8 image of x [B, C, H, W] (on its device) with the global
    CPU generator seeded by seeds[i] (a CPU tensor); the global random state is unchanged."""
    with torch.random.fork_rng(devices=[]):
        out = []
        for image, seed in zip(x, seeds.tolist()):
            torch.manual_seed(seed)
            out.append(transform(image))
    return torch.stack(out)
