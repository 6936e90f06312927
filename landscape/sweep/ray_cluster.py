"""The Ray cluster a sweep runs on: where it is (`RayOptions`), connecting to it, and the check
that every node sees the record's folder and runs this version of landscape.

Ray is an optional dependency, imported only here and only when the Ray executor is asked for.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path

import torch

from landscape.config import RecordConfig
from landscape.errors import ConfigError, RecordError
from landscape.store.side_files import create_new
from landscape.version import __version__

INSTALL_HINT = "pip install bn-landscape[ray]"
MAX_THREADS = 1024  # torch threads per run


@dataclass(frozen=True)
class RayOptions:
    """Where the tasks run and what each one reserves.

    `address`: "local" starts a Ray instance on this machine for the sweep (and stops it
    afterwards); "auto" joins the cluster started on this machine with `ray start`; host:port
    joins that cluster. `cpus_per_run` and `gpus_per_run` are Ray resources (fractions allowed:
    0.25 GPUs packs four runs on one GPU); `gpus_per_run` None means 1 on CUDA, 0 on a CPU.
    `num_cpus` limits a local instance (None: every core).

    `threads_per_run`: torch's threads in each run. A CPU's float reductions depend on how
    many threads share them, so a Ray record is identical to the local executor's only at the
    same count: None (the default) is the count a local run of this process uses
    (`torch.get_num_threads()`). `cpus_per_run` None reserves that many CPUs on a CPU (one
    on CUDA, where the threads do little)."""

    address: str = "local"
    cpus_per_run: float | None = None
    gpus_per_run: float | None = None
    max_retries: int = 3
    num_cpus: int | None = None
    threads_per_run: int | None = None

    def threads(self) -> int:
        if self.threads_per_run is not None:
            return self.threads_per_run
        return torch.get_num_threads()  # what the local executor's runs use in this process

    def check_threads(self) -> None:
        if self.threads() < 1:
            raise ConfigError(f"--threads-per-run must be at least 1, got {self.threads()}")
        if self.threads() > MAX_THREADS:  # torch would try to start them all
            raise ConfigError(f"--threads-per-run {self.threads():,} is more than "
                              f"{MAX_THREADS:,}, the most threads a run uses")

    def cpus(self, config: RecordConfig) -> float:
        if self.cpus_per_run is not None:
            return self.cpus_per_run
        return 1.0 if config.device.startswith("cuda") else float(self.threads())

    def gpus(self, config: RecordConfig) -> float:
        if self.gpus_per_run is not None:
            return self.gpus_per_run
        return 1.0 if config.device.startswith("cuda") else 0.0

    def validate(self, config: RecordConfig) -> None:
        self.check_threads()
        # Finite first: inf passes "> 0" and then fails int() far from here; nan passes all.
        cpus = self.cpus(config)
        if not (math.isfinite(cpus) and cpus > 0):
            raise ConfigError(f"--cpus-per-run must be positive, got {cpus:g}")
        gpus = self.gpus(config)
        if not (math.isfinite(gpus) and gpus >= 0):
            raise ConfigError(f"--gpus-per-run must be >= 0, got {gpus:g}")
        if gpus > 1 and gpus != int(gpus):
            raise ConfigError(f"--gpus-per-run above 1 must be a whole number of GPUs, got "
                              f"{gpus:g}")
        if config.device.startswith("cuda") and gpus == 0:
            raise ConfigError("--device cuda with --executor ray needs --gpus-per-run > 0 "
                              "(e.g. 0.25 to pack four runs on a GPU)")
        if config.device == "cpu" and gpus > 0:
            raise ConfigError(f"--gpus-per-run {gpus:g} with --device cpu: the runs would "
                              f"hold GPUs they do not use; use --device cuda or leave it out")
        if self.max_retries < 0:
            raise ConfigError(f"max_retries must be >= 0, got {self.max_retries}")


def import_ray():
    try:
        import ray
    except ImportError:
        raise ConfigError(f"--executor ray needs Ray, which is not installed: "
                          f"{INSTALL_HINT}") from None
    return ray


@contextlib.contextmanager
def connected(ray, options: RayOptions):
    """Ray, connected as `options.address` says (an instance already connected in this
    process is used as it is, and left running). Yields whether it started a local Ray."""
    if ray.is_initialized():
        yield False
        return
    local = options.address == "local"
    if not local:
        _check_reachable(options.address)
    try:
        ray.init(address=options.address, num_cpus=options.num_cpus if local else None,
                 include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise RecordError(f"cannot reach a Ray cluster at --ray-address {options.address} "
                          f"({str(exc).splitlines()[0]}); start one with `ray start --head`, "
                          f"or leave --ray-address out for a local one") from None
    try:
        yield local
    finally:
        ray.shutdown()


def _check_reachable(address: str) -> None:
    """Refuse an address where no Ray cluster answers: Ray itself would retry for minutes."""
    if address == "auto":  # the cluster started on this machine, where Ray notes it
        address = os.environ.get("RAY_ADDRESS", "")
        if not address:
            try:
                address = Path("/tmp/ray/ray_current_cluster").read_text().strip()
            except OSError:
                raise RecordError("--ray-address auto: no Ray cluster was started on this "
                                  "machine; start one with `ray start --head`, or leave "
                                  "--ray-address out for a local one") from None
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except (OSError, ValueError):
        raise RecordError(f"no Ray cluster answers at {address}; start one with `ray start "
                          f"--head`, or leave --ray-address out for a local one") from None


def _can_see(probe: str, token: str) -> tuple[str, bool, str]:
    """On a worker: its host, whether it reads the driver's probe file, its landscape."""
    try:
        seen = Path(probe).read_text() == token
    except OSError:
        seen = False
    return socket.gethostname(), seen, __version__


def check_workers_see(ray, folder: Path) -> None:
    """Fail at once unless a worker on every node of the cluster reads a file the driver just
    wrote in `folder` (shards need a file system every node shares) and runs this version of
    landscape."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    token = secrets.token_hex(8)
    probe = folder / f".visible-{token}"
    _write_probe(probe, token)
    try:
        can_see = ray.remote(_can_see)
        refs = [can_see.options(num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(
                    node["NodeID"], soft=False)).remote(str(probe), token)
                for node in ray.nodes() if node["Alive"]]
        for host, seen, version in ray.get(refs, timeout=300):
            if not seen:
                raise RecordError(
                    f"a Ray worker on {host} cannot see {folder.parent}: the record's folder "
                    f"must be on a file system that every node of the cluster shares (see "
                    f"docs/scaling.md)")
            if version != __version__:
                raise RecordError(f"a Ray worker on {host} runs landscape {version}, this "
                                  f"driver {__version__}; install the same version on every "
                                  f"node")
    finally:
        probe.unlink(missing_ok=True)


def _write_probe(probe: Path, token: str) -> None:
    with os.fdopen(create_new(probe, "the shared-folder probe"), "w") as file:
        file.write(token)
