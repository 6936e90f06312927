"""A Ray task checks memory and disk where it runs: the driver's estimates saw the driver's
device and disk, and a worker with less room must stop its run with one clear line (the
driver raises it as the ConfigError it is). The task's function is called here directly, as a
Ray worker calls it, with this machine made small."""

import pytest
import torch

import landscape.sweep.limits as limits
from landscape.config import RecordConfig
from landscape.errors import ConfigError
from landscape.sweep.plans import plan_runs
from landscape.sweep.ray_executor import _train_shard, _WorkerError
from landscape.training.tasks import make_task


def task_arguments(tmp_path, cifar_dir):
    config = RecordConfig(models=("vgg",), lrs=(0.01,), width=0.125, batch_size=32,
                          max_steps=2, device="cpu", data_dir=str(cifar_dir), verify_md5=False)
    identity = make_task(config, torch.device("cpu")).identity
    plan = plan_runs(config)[0]
    shard = tmp_path / f"{plan.run_id}.h5"
    return (config.to_dict(), plan, 1, str(shard), identity.to_dict(),
            str(tmp_path / "STOP"), 1, "contiguous"), shard


@pytest.mark.parametrize("small, expected", [
    ("available_memory", "optim.batch_size 32 needs about 0.0 GiB of memory per training step "
                         "on cpu, and 0.0 GiB is free; use a smaller optim.batch_size"),
    ("free_disk", "the record would need about"),
])
def test_a_worker_without_room_stops_its_run_in_one_line(tmp_path, cifar_dir, monkeypatch,
                                                         small, expected):
    monkeypatch.setattr(limits, small, lambda where: 1024)
    arguments, shard = task_arguments(tmp_path, cifar_dir)
    result = _train_shard(*arguments)
    assert isinstance(result, _WorkerError) and result.kind == "ConfigError", result
    message = str(ConfigError(result.message))  # as the driver raises it (the CLI: with flags)
    assert message.startswith("the Ray worker on ") and \
        " has no room for run vgg_lr0.01: " in message, message
    assert expected in message and "\n" not in message
    assert not shard.exists()  # refused before the shard was created


def test_a_worker_with_room_trains_its_run(tmp_path, cifar_dir):
    arguments, shard = task_arguments(tmp_path, cifar_dir)
    result = _train_shard(*arguments)
    assert not isinstance(result, _WorkerError), result
    assert result.outcome.status == "complete" and shard.exists()
