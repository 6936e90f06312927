"""Random erasing (Zhong et al., 2020) as batched tensor ops.

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


def erase_boxes(n: int, generator: torch.Generator, *, p: float, height: int, width: int
                ) -> torch.Tensor:
    """One rectangle per image, int64 [n, 4] as (top, left, bottom, right), end-exclusive.

    With probability `p` an image gets a rectangle of area s·H·W, s ~ U[0.02, 0.33], and aspect
    ratio r = h / w, log r ~ U[log 0.3, log 3.3]: h = round(√(s r) H), w = round(√(s / r) W),
    each clipped to [1, H] (resp. [1, W]), at a uniformly random position inside the image.
    Other images get an empty rectangle (bottom = top). Always draws 5·n numbers, whatever the
    outcome, so the generator advances by the same amount every epoch.
    """
    u = torch.rand((5, n), generator=generator, dtype=torch.float64)
    area = (ERASE_AREA[0] + (ERASE_AREA[1] - ERASE_AREA[0]) * u[1]) * (height * width)
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
