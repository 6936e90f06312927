"""Images per second of the batch stream with and without torchvision's augmentations.

The stream builds batches of the embedded CIFAR-10 subset (2,000 images) as `landscape record`
does: crop and flip as batched tensor ops; AutoAugment, rotation and colour jitter per image
with a seed each (landscape/data/augment.py). Only batch building is timed (no model), so the
numbers are the augmentation's cost, to compare with a training step's.

    python benchmarks/augment_speed.py [--device cpu] [--batches 30] [--batch-size 128]

Measured 2026-12-02 on this project's shared 2-core CPU machine (load average 8.8: other jobs
were running, so expect spread), one torch thread, batch 128, 10 batches each:
    none                                     48,130 images/s
    crop+flip                                 9,672 images/s
    crop+flip+autoaugment                       576 images/s
    crop+flip+rotation+jitter                   280 images/s
    crop+flip+autoaugment+rotation+jitter       236 images/s
AutoAugment per image costs ~1.7 ms per image here, about 0.2 s per batch of 128: comparable to
a small model's training step on this CPU. On a GPU the per-image loop launches small kernels
per image; batching by sub-policy would be the next step if it matters.
"""

from __future__ import annotations

import argparse
import time

import torch

from landscape.data import BatchOptions, BatchStream, DeviceImages
from landscape.data.embedded import load_embedded

VARIANTS = {
    "none": {},
    "crop+flip": dict(crop_padding=4, flip=True),
    "crop+flip+autoaugment": dict(crop_padding=4, flip=True, autoaugment=True),
    "crop+flip+rotation+jitter": dict(crop_padding=4, flip=True, rotation=15.0,
                                      color_jitter=(0.2, 0.2, 0.2)),
    "crop+flip+autoaugment+rotation+jitter": dict(crop_padding=4, flip=True, autoaugment=True,
                                                  rotation=15.0, color_jitter=(0.2, 0.2, 0.2)),
}


def images_per_second(images: DeviceImages, options: BatchOptions, batches: int) -> float:
    stream = BatchStream(images, options, seed=0)
    it = stream.batches()
    next(it)  # warm-up (and the epoch's draws)
    sync = torch.cuda.synchronize if images.device.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    sync()
    return batches * options.batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    data = load_embedded()
    images = DeviceImages(data.train_x, data.train_y, torch.device(args.device))
    print(f"device {args.device}, torch threads {torch.get_num_threads()}, batch "
          f"{args.batch_size}, {args.batches} batches, {len(images)} embedded CIFAR-10 images")
    for name, options in VARIANTS.items():
        rate = images_per_second(images, BatchOptions(batch_size=args.batch_size, **options),
                                 args.batches)
        print(f"{name:40s} {rate:10,.0f} images/s")


if __name__ == "__main__":
    main()
