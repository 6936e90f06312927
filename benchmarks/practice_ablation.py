"""A short ablation in the course reports' style on the embedded CIFAR-10 subset: cnn3,
baseline -> + crop and flip -> + AutoAugment -> + label smoothing -> + Mish -> + BatchNorm.

Each variant adds one option to the previous one and is recorded into its own file under
--out; the table gives the held-out accuracy (401 images of the embedded subset: NOT CIFAR-10's
test set) at the last evaluation and the best over the evaluations, and each run's wall time.

    python benchmarks/practice_ablation.py --out ablation [--steps 300] [--seeds 0]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import landscape
from landscape.config import RecordConfig
from landscape.sweep import record

BASE = dict(models=("cnn3",), lrs=(1e-3,), optimizer="adam", batch_size=128, device="cpu",
            taps=(), flush_seconds=30.0, checkpoint_seconds=600.0)
# (name, what it adds to the previous variant)
CHAIN = [
    ("baseline", {}),
    ("crop+flip", dict(crop_padding=4, flip=True)),
    ("autoaugment", dict(autoaugment=True)),
    ("label_smoothing", dict(label_smoothing=0.1)),
    ("mish", dict(activation="mish")),
    ("batchnorm", dict(models=("cnn3_bn",))),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--seeds", default="0")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    seeds = tuple(int(s) for s in args.seeds.split(","))
    options: dict = {}
    print(f"{'variant':16s} {'seed':>4s} {'held-out acc (last)':>20s} {'(best)':>7s} "
          f"{'train loss':>10s} {'wall time':>10s}", flush=True)
    for name, adds in CHAIN:
        options.update(adds)
        cfg = RecordConfig(**{**BASE, **options}, seeds=seeds, max_steps=args.steps,
                           epochs=None, eval_every=args.eval_every)
        path = args.out / f"{name}.h5"
        if not path.exists():
            record(cfg, path)
        rec = landscape.open_record(path)
        for run_id, info in rec.runs.items():
            ev = rec.load(run_id).eval
            print(f"{name:16s} {info.attrs['seed']:4d} {ev.test_acc[-1]:20.3f} "
                  f"{np.nanmax(ev.test_acc):7.3f} {ev.train_loss[-1]:10.3f} "
                  f"{info.seconds:9.0f}s", flush=True)


if __name__ == "__main__":
    main()
