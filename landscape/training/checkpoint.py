"""Checkpoints that let an interrupted record continue exactly where it stopped.

One file next to the record (`RECORD.h5.ckpt`) holds the state of the run in progress: model,
optimizer, random state, position in the data stream and the training loop's own carry-over.
It is replaced atomically (write, then rename), so a kill at any moment leaves either the old
checkpoint or the new one, and it is removed when the sweep has no run left in progress.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from landscape.errors import RecordError
from landscape.training.contracts import LoopState
from landscape.store.side_files import create_new


def checkpoint_path(record_path: str | os.PathLike) -> Path:
    record_path = Path(record_path)
    return record_path.with_name(record_path.name + ".ckpt")


@dataclass
class Checkpoint:
    run_id: str
    loop: LoopState
    model: dict
    optimizer: dict
    rng_cpu: torch.Tensor
    rng_cuda: torch.Tensor | None
    stream: dict


def save_checkpoint(path: Path, checkpoint: Checkpoint) -> None:
    tmp = path.with_name(path.name + ".tmp")
    payload = {
        "run_id": checkpoint.run_id,
        "loop": vars(checkpoint.loop),
        "model": checkpoint.model,
        "optimizer": checkpoint.optimizer,
        "rng_cpu": checkpoint.rng_cpu,
        "rng_cuda": checkpoint.rng_cuda,
        "stream": checkpoint.stream,
    }
    # Made new (never through a link planted at its name: see landscape.store.side_files).
    fd = create_new(tmp, "the checkpoint's temporary file")
    try:
        with os.fdopen(fd, "wb") as file:
            torch.save(payload, file)
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:  # torch.save reports a short write as RuntimeError
        tmp.unlink(missing_ok=True)
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else \
            "the write stopped short (full disk or file-size limit)"
        raise RecordError(f"cannot write the checkpoint {path}: {reason}; the record and the "
                          f"previous checkpoint are as they were: make room and continue the "
                          f"record with landscape record --resume") from exc


def load_checkpoint(path: Path) -> Checkpoint | None:
    """The checkpoint at `path`, or None if there is none."""
    if not path.exists():
        return None
    try:
        # weights_only: a checkpoint holds tensors, numbers and strings, nothing to execute.
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged file
        # Not torch's message: it runs to many lines and advises weights_only=False, which is
        # the wrong advice for a file that may have been tampered with.
        raise _damaged(path, f"torch cannot read it as tensors ({type(exc).__name__})") from exc
    try:
        return Checkpoint(
            run_id=payload["run_id"],
            loop=LoopState(**payload["loop"]),
            model=payload["model"],
            optimizer=payload["optimizer"],
            rng_cpu=payload["rng_cpu"],
            rng_cuda=payload["rng_cuda"],
            stream=payload["stream"],
        )
    except (KeyError, TypeError) as exc:  # readable, but not what save_checkpoint writes
        raise _damaged(path, "it does not hold a landscape checkpoint") from exc


def _damaged(path: Path, why: str) -> RecordError:
    return RecordError(f"the checkpoint {path} is damaged or was not written by landscape "
                       f"({why}); delete it to restart the unfinished run from its beginning")
