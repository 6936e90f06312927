"""Bounds on the options that size memory and disk: one line, before the record exists, and
estimates that match what they estimate."""

import torch
from click.testing import CliRunner
from torch import nn

from landscape.cli import main
import landscape.sweep.limits as limits
from landscape.config import RecordConfig
from landscape.sweep.limits import record_bytes, step_memory_bytes
from landscape.sweep import record

from conftest import TINY


def refused(tmp_path, *args) -> str:
    """The one error line of `landscape record` with these options; nothing written."""
    out = tmp_path / "r.h5"
    result = CliRunner().invoke(main, ["record", *TINY, "--model", "vgg", "-o", str(out), *args])
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    assert not out.exists() and not list(tmp_path.iterdir())
    return errors[0]


def test_count_limits(tmp_path):
    lrs = ",".join(f"{(i + 1) * 1e-4:g}" for i in range(101))
    assert refused(tmp_path, "--lrs", lrs) == ("Error: --lrs lists 101 learning rates, more "
                                               "than 100, the most a record holds; split the "
                                               "sweep into several records")
    seeds = ",".join(str(i) for i in range(101))
    assert "--seeds lists 101 seeds, more than 100" in refused(tmp_path, "--seeds", seeds)
    many = ",".join(f"{(i + 1) * 1e-4:g}" for i in range(100))
    assert "1,200 runs (--model x --lrs x --seeds) is more than 1,000" in refused(
        tmp_path, "--model", "vgg_bn", "--lrs", many, "--seeds", "0,1,2,3,4,5")
    assert "--probe-count 1001 is more than 1,000" in refused(
        tmp_path, "--probe-every", "1", "--probe-count", "1001")


def test_step_memory_estimate_counts_every_layer_output():
    """Ground truth for a model small enough to count by hand: outputs of 20 + 20 + 5 float32
    per sample, 10*20 + 20 + 20*5 + 5 = 325 float32 parameters."""
    model = nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 5))
    got = step_memory_bytes(model, torch.zeros(2, 10), batch_size=64)
    want = 45 * 4 * 64 * limits.ACTIVATION_FACTOR + 325 * 4 * limits.PARAMETER_COPIES
    assert got == want


def test_a_batch_that_does_not_fit_in_memory_is_refused(tmp_path, monkeypatch, cifar_dir):
    monkeypatch.setattr(limits, "available_memory", lambda device: 64 << 20)  # 64 MiB free
    line = refused(tmp_path, "--data-dir", str(cifar_dir), "--no-verify", "--width", "1",
                   "--batch-size", "256")
    assert line.startswith("Error: --batch-size 256 needs about ")
    assert "of memory per training step on cpu, and 0.1 GiB is free; use a smaller " \
           "--batch-size" in line


def test_record_size_estimate_bounds_a_real_record(tmp_path, cifar_dir, one_thread):
    """The estimate of a record's size against a real one: the bytes of its per-step rows,
    taps and kept weights, exactly (HDF5 adds headers and whole chunks, so the file itself is larger; the few
    evaluation rows are left out of both)."""
    import h5py

    config = RecordConfig(models=("vgg",), lrs=(1e-3,), width=0.125, batch_size=32,
                          max_steps=40, device="cpu", data_dir=str(cifar_dir), verify_md5=False,
                          taps=("final", "features.stage1.conv1.weight"),
                          save_weights_every=15, save_weights_at=(3,), save_final_weights=True)
    out = tmp_path / "r.h5"
    record(config, out)
    stored = 0

    def add(name, obj):
        nonlocal stored
        if isinstance(obj, h5py.Dataset) and obj.ndim and "/eval/" not in obj.name:
            stored += obj.size * obj.dtype.itemsize

    with h5py.File(out, "r") as f:
        f.visititems(add)
        layout_taps = {p: f["runs/vgg_lr0.001/taps"][p]["grad"].shape[1:]
                       for p in f["runs/vgg_lr0.001/taps"]}
        table = f["runs/vgg_lr0.001/weights"]
        assert list(table["step"][:]) == [0, 3, 15, 30, 40]
        layout_weights = {c: (table[c].shape[1:], table[c].dtype.name)
                          for c in table.attrs["columns"] if c != "step"}

    class Layout:
        taps, n_eta, weights = layout_taps, 0, layout_weights

    estimate = record_bytes(config, [Layout()], total_steps=40)
    assert estimate == stored


def test_a_record_that_does_not_fit_on_the_disk_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(limits, "free_disk", lambda folder: 1 << 20)
    line = refused(tmp_path, "--max-steps", "50000")
    assert "the record would need about" in line and "has 0.0 GiB free" in line


def test_a_record_past_the_file_size_limit_is_refused_before_it_exists(tmp_path, one_thread):
    """`ulimit -f` (RLIMIT_FSIZE) counts like free space: a record that would outgrow it is
    refused before its file exists (it was started, and stopped at the limit)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    out = tmp_path / "r.h5"
    resource.setrlimit(resource.RLIMIT_FSIZE, (512 << 10, hard))  # Python ignores SIGXFSZ
    try:
        result = CliRunner().invoke(main, ["record", "--model", "lenet5", "--dataset", "mnist",
                                           "--lrs", "0.01", "--batch-size", "16", "--max-steps",
                                           "200", "--device", "cpu", "-o", str(out)])
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert result.exit_code == 1 and len(errors) == 1, result.output
    assert "and the file-size limit (ulimit -f) lets a file grow to 0.5 MiB" in errors[0]
    assert not list(tmp_path.iterdir())


def test_the_hessian_probe_is_bounded_by_its_memory(tmp_path, monkeypatch):
    """Its counts become vectors of the model's size: Lanczos's basis (4 bytes a value),
    Hutchinson's Rademacher vectors (int8, then two float32 arrays: 9 bytes), plus six working
    vectors; the largest is refused against free memory in one line, before it is timed."""
    from landscape.config import HessianConfig
    from landscape.models import build_model

    n = sum(p.numel() for p in build_model("vgg", width=0.125).parameters())
    config = RecordConfig(models=("vgg",), width=0.125, lrs=(0.01,), max_steps=1,
                          hessian=HessianConfig(every=1, iters=40, trace_samples=300))
    assert limits.hessian_memory_bytes(config, n) == (300 * 9 * n + 6 * 4 * n,
                                                      "recording.hessian.trace_samples")
    density = config.with_changes(hessian=HessianConfig(density_at=(0,), density_iters=200))
    assert limits.hessian_memory_bytes(density, n) == (200 * 4 * n + 6 * 4 * n,
                                                       "recording.hessian.density_iters")
    free = 300 * 9 * n  # room for the trace's vectors, not for them and a training step
    monkeypatch.setattr(limits, "available_memory", lambda device: free)
    line = refused(tmp_path, "--hessian-every", "1", "--hessian-trace-samples", "300")
    assert line.startswith("Error: --hessian-trace-samples 300 needs about ")
    assert f"for the Hessian probe's vectors (300 of the model's {n:,} parameters at once) " \
           f"beside a training step on cpu" in line
