"""A record written from constructed arrays (no training), in which BatchNorm's effect on the
paper's β reverses at one learning rate: at lr 1e-4 β is 4x *higher* with BN, at 5e-4 and
1e-3 4x lower. Pooled over the three lrs the median β is lower with BN in every seed, so a
pooled verdict alone says "smoother with BN"; a report that hides nothing names lr 1e-4.

The runs share their training loss curve (so that every seed has a common loss range at every
lr), and each probed point's gradient change is β times its distance, so that the effective
β of every probed step is exactly the value chosen here."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from landscape.config import ProbeConfig, RecordConfig
from landscape.store import RecordWriter, RunLayout, RunStatus

MODELS = ("vgg_light", "vgg_light_bn")
LRS = (1e-4, 5e-4, 1e-3)
REVERSED_LR = 1e-4
SEEDS = (0, 1, 2)
STEPS, PROBE_EVERY, ETAS = 60, 10, np.array([0.5, 1.0, 2.0, 4.0])
BETA_NO_BN = 10.0


def beta_of(model: str, lr: float, seed: int) -> float:
    """The run's effective β at every probed step (a small per-seed spread)."""
    spread = 1.0 + 0.05 * seed
    if model == "vgg_light":
        return BETA_NO_BN * spread
    return BETA_NO_BN * (4.0 if lr == REVERSED_LR else 0.25) * spread


def config() -> RecordConfig:
    return RecordConfig(models=MODELS, lrs=LRS, seeds=SEEDS, optimizer="adam",
                        max_steps=STEPS, device="cpu",
                        probe=ProbeConfig(every=PROBE_EVERY, count=len(ETAS),
                                          low=float(ETAS[0]), high=float(ETAS[-1]),
                                          direction="update"))


def write(path: Path) -> Path:
    """The record at `path`, every run complete."""
    cfg = config()
    runs = [(model, lr, seed) for seed in SEEDS for model in MODELS for lr in LRS]
    layouts = []
    for index, (model, lr, seed) in enumerate(runs):
        run_cfg = cfg.run_config(model, lr, {})
        layouts.append(RunLayout(
            run_id=f"{model}_lr{lr:g}_s{seed}",
            attrs={"model": model, "lr": lr, "optimizer": "adam", "seed": seed,
                   "index": index, "parameter_count": 1000, "probe_direction": "update",
                   "probe_dtype": "float32", "factors": {}, "config": run_cfg.to_dict()},
            n_eta=len(ETAS)))
    data = {"name": "constructed", "n_train": 1000, "n_test": 100,
            "note": "constructed arrays, no training (tests/reversal_record.py)"}
    with RecordWriter.create(path, config=cfg.to_dict(), data=data, runs=layouts,
                             versions={"landscape": "test"}) as writer:
        for layout, (model, lr, seed) in zip(layouts, runs):
            _fill(writer.run(layout.run_id), beta_of(model, lr, seed), seed)
    return path


def _fill(run, beta: float, seed: int) -> None:
    step = np.arange(STEPS)
    loss = 2.3 * np.exp(-step / 40.0) + 0.01 * seed
    grad_norm = 1.0 + 0.0 * step
    run.table("steps").append(step=step, loss=loss, grad_norm=grad_norm,
                              update_norm=0.01 + 0.0 * step, grad_change=0.1 + 0.0 * step,
                              applied_grad_norm=grad_norm,
                              lr=np.full(STEPS, 1e-3))
    probed = step[::PROBE_EVERY]
    n = len(probed)
    distance = np.tile(ETAS * 0.01, (n, 1))
    run.table("probe").append(
        step=probed, eta=np.tile(ETAS, (n, 1)),
        loss=loss[probed, None] * (1.0 + 0.01 * np.arange(len(ETAS)))[None, :],
        grad_diff=beta * distance, distance=distance, grad_norm=grad_norm[probed],
        beta=np.full(n, beta))
    evals = np.array([STEPS // 2, STEPS])
    run.table("eval").append(step=evals, epoch=evals / 8.0, train_loss=[1.5, 1.0],
                             train_acc=[0.4, 0.5], test_loss=[1.6, 1.2], test_acc=[0.35, 0.45],
                             val_loss=[np.nan] * 2, val_acc=[np.nan] * 2)
    run.set_state(RunStatus.COMPLETE, steps_done=STEPS, seconds=1.5)
