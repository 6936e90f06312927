"""What was changed for speed changes nothing that is measured (beyond float32 rounding): the
memory format chosen by measuring (landscape.training.tuning), the gradients swapped instead of copied
between unprobed steps, and the training precision (--precision), whose probes stay float32."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

import landscape
import landscape.sweep.run
import landscape.training.instrument
from landscape.training import tuning
from landscape.cli import main
from landscape.config import ProbeConfig, RecordConfig
from landscape.errors import ConfigError
from landscape.models import build_model
from landscape.training.recorder import MemoryRecorder
from landscape.sweep import record, resume
from landscape.training.evaluation import EvaluationPlan
from landscape.training.loop import TrainingLoop
from landscape.training.loop_settings import Measurements

from conftest import assert_records_equal
from test_resume import StopAfter


def busy(**changes) -> RecordConfig:
    """A short record with every per-step measurement, a tap, the probe and ICS."""
    values = dict(models=("vgg_bn",), lrs=(1e-3,), optimizer="adam", width=0.125,
                  batch_size=32, max_steps=8, eval_every=4, device="cpu", subset=400,
                  probe=ProbeConfig(every=3, count=3), ics_every=4,
                  ics_layers=("features.stage2.conv1",))
    values.update(changes)
    return RecordConfig(**values)


def record_with_format(tmp_path, monkeypatch, name: str, config: RecordConfig):
    monkeypatch.setenv(tuning.ENV_FORMAT, name)
    path = tmp_path / f"{name}.h5"
    record(config, path)
    return landscape.open_record(path)


# Differences of nearly equal gradients (the probe's gradient change at its shortest step
# lengths, and β from it) lose digits to cancellation: float32 rounding of the gradients,
# relative to their difference.
CANCELLING = {"grad_diff", "beta"}


def assert_close_records(a, b, rtol: float, rows: slice = slice(None)) -> None:
    """Every float column of every table (and every tap) of `rows` agrees to `rtol`."""
    for run_id in a.runs:
        da, db = a.load(run_id), b.load(run_id)
        for table in ("steps", "eval", "probe", "ics"):
            ta, tb = getattr(da, table), getattr(db, table)
            for name, value in vars(ta).items():
                if isinstance(value, np.ndarray) and value.dtype.kind == "f":
                    np.testing.assert_allclose(
                        getattr(tb, name)[rows], value[rows], atol=1e-7,
                        rtol=100 * rtol if name in CANCELLING else rtol,
                        err_msg=f"{run_id} {table}.{name}")
        for param in a.runs[run_id].taps:
            pa, pb = a.tap(run_id, param), b.tap(run_id, param)
            for name in ("grad", "weight_delta"):
                va, vb = getattr(pa, name)[rows], getattr(pb, name)[rows]
                # Entry by entry, relative to the tensor's largest entry (small entries are
                # sums of larger terms of both signs).
                np.testing.assert_allclose(vb, va, rtol=0, atol=10 * rtol * np.abs(va).max())


# ---- memory format -------------------------------------------------------------------------


@pytest.mark.parametrize("optimizer, rows, rtol", [
    ("sgd", slice(None), 1e-5),  # every step
    # The first step; Adam's first update is g/(|g| + eps) per entry, which turns the rounding
    # of gradient entries near eps into differences of up to lr (a few 1e-5 of the update).
    ("adam", slice(0, 1), 1e-4),
])
def test_both_memory_formats_record_the_same_numbers(tmp_path, monkeypatch, optimizer, rows,
                                                     rtol):
    """Channels-last and contiguous run different convolution kernels: every recorded number
    agrees to float32 rounding, and each run says which format it used.

    With plain SGD the two trainings stay within rounding of each other for the whole record;
    Adam divides by the root of tiny second moments, which amplifies rounding differences step
    after step (as any change of kernels, threads or machine does), so for Adam the first step,
    measured at the same weights, is compared."""
    config = busy(optimizer=optimizer, lrs=(0.01 if optimizer == "sgd" else 1e-3,),
                  ics_every=3, taps=("classifier.fc3.weight",))
    last = record_with_format(tmp_path, monkeypatch, "channels_last", config)
    nchw = record_with_format(tmp_path, monkeypatch, "contiguous", config)
    run = next(iter(last.runs))
    assert last.runs[run].attrs["memory_format"] == "channels_last"
    assert nchw.runs[run].attrs["memory_format"] == "contiguous"
    assert_close_records(last, nchw, rtol=rtol, rows=rows)
    # Not the same kernels: the numbers are not bit-identical (else this test proves nothing).
    assert not np.array_equal(last.load(run).steps.grad_norm, nchw.load(run).steps.grad_norm)


def test_resume_continues_in_the_format_the_run_started_in(tmp_path, monkeypatch):
    monkeypatch.setenv(tuning.ENV_FORMAT, "contiguous")
    config = busy(checkpoint_seconds=1e-9)
    whole = tmp_path / "whole.h5"
    record(config, whole)
    path = tmp_path / "stopped.h5"
    record(config, path, should_stop=StopAfter(5))
    monkeypatch.setenv(tuning.ENV_FORMAT, "channels_last")  # this machine now says otherwise
    resume(path)
    assert_records_equal(landscape.open_record(whole), landscape.open_record(path))


def test_the_faster_format_is_measured_once_then_read_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(tuning.ENV_CACHE_DIR, str(tmp_path))
    monkeypatch.delenv(tuning.ENV_FORMAT, raising=False)
    timed = []
    real = tuning.time_formats

    def counting(*args, **kwargs):
        timed.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(tuning, "time_formats", counting)
    kwargs = dict(model="vgg_light", options={"width": 0.25}, batch_shape=(16, 3, 32, 32),
                  device=torch.device("cpu"))
    build = lambda: build_model("vgg_light", width=0.25)  # noqa: E731
    first, how = tuning.choose_memory_format(build, **kwargs)
    assert how == "measured" and first in tuning.FORMATS and len(timed) == 1
    cached = json.loads((tmp_path / "tuning.json").read_text())
    (entry,) = cached.values()
    assert entry["format"] == first and set(entry["seconds"]) == set(tuning.FORMATS)
    assert all(s > 0 for s in entry["seconds"].values())
    assert tuning.choose_memory_format(build, **kwargs) == (first, "cache") and len(timed) == 1
    # Another batch shape is another question.
    other = {**kwargs, "batch_shape": (8, 3, 32, 32)}
    assert tuning.choose_memory_format(build, **other)[1] == "measured" and len(timed) == 2
    # A broken cache is an empty one; with the cache off nothing is read or written.
    (tmp_path / "tuning.json").write_text("{not json")
    assert tuning.choose_memory_format(build, **kwargs)[1] == "measured"
    (tmp_path / "tuning.json").unlink()
    monkeypatch.setenv(tuning.ENV_CACHE, "off")
    assert tuning.choose_memory_format(build, **kwargs)[1] == "measured"
    assert not (tmp_path / "tuning.json").exists()
    # The environment overrides everything, without measuring.
    monkeypatch.setenv(tuning.ENV_FORMAT, "contiguous")
    assert tuning.choose_memory_format(build, **kwargs) == ("contiguous", "env")
    assert len(timed) == 4


def test_measuring_leaves_the_random_state_alone(monkeypatch, tmp_path):
    monkeypatch.setenv(tuning.ENV_CACHE, "off")
    torch.manual_seed(3)
    before = torch.get_rng_state()
    tuning.time_formats(lambda: build_model("vgg_light", width=0.25), (4, 3, 32, 32),
                        torch.device("cpu"), passes=1, rounds=1)
    assert torch.equal(torch.get_rng_state(), before)


@pytest.mark.parametrize("seconds, expected", [
    ({"channels_last": 1.0, "contiguous": 0.5}, "contiguous"),
    ({"channels_last": 1.0, "contiguous": 0.98}, "channels_last"),  # within the margin
    ({"channels_last": 0.5, "contiguous": 1.0}, "channels_last"),
])
def test_the_default_format_stays_unless_beaten_by_the_margin(seconds, expected):
    assert tuning.faster_format(seconds) == expected


def test_a_bad_format_in_the_environment_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setenv(tuning.ENV_FORMAT, "nhwc")
    with pytest.raises(ConfigError, match="LANDSCAPE_MEMORY_FORMAT='nhwc' is not a memory"):
        tuning.requested_format()
    result = CliRunner().invoke(main, ["record", "--model", "vgg", "--width", "0.125",
                                       "--batch-size", "16", "--max-steps", "1", "--subset",
                                       "64", "--device", "cpu", "-o", str(tmp_path / "r.h5")])
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines[-1].startswith("Error: LANDSCAPE_MEMORY_FORMAT='nhwc'")
    assert "Traceback" not in result.output and not (tmp_path / "r.h5").exists()


# ---- the per-step measurements without gradient copies ---------------------------------------


def reference_norms(model, optimizer, batches):
    """The course loop with every norm computed in float64 from copies: ‖g_t‖, ‖g_t − g_{t−1}‖
    and ‖w_{t+1} − w_t‖ per step (an independent implementation of what the loop records)."""
    rows, prev = [], None
    params = [p for p in model.parameters()]
    model.train()
    for x, y in batches:
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=False)
        loss.backward()
        g = torch.cat([p.grad.double().flatten() for p in params])
        w = torch.cat([p.detach().double().flatten() for p in params])
        optimizer.step()
        w_next = torch.cat([p.detach().double().flatten() for p in params])
        rows.append((float(loss.detach()), float(g.norm()),
                     np.nan if prev is None else float((g - prev).norm()),
                     float((w_next - w).norm())))
        prev = g
    return np.array(rows)


@pytest.mark.parametrize("probe_every", [0, 3])
def test_recorded_norms_match_a_float64_reference(embedded, probe_every):
    """Between unprobed steps the loop keeps the previous gradient by swapping tensors, on
    probed steps by copying; across both (and the switches between them) every recorded norm
    is the float64 norm of the same training, and the training is the same."""
    torch.manual_seed(0)
    x = torch.from_numpy(embedded.train_x[:160]).float().div(255).sub(0.5)
    y = torch.from_numpy(embedded.train_y[:160]).long()
    batches = [(x[i:i + 32].contiguous(memory_format=torch.channels_last), y[i:i + 32])
               for i in range(0, 160, 32)] * 2

    def fresh():
        torch.manual_seed(0)
        model = build_model("vgg_bn", width=0.125).to(memory_format=torch.channels_last)
        return model, torch.optim.Adam(model.parameters(), lr=1e-3)

    model, optimizer = fresh()
    expected = reference_norms(model, optimizer, batches)
    model, optimizer = fresh()
    recorder = MemoryRecorder()
    probes = ([landscape.probes.GradientProbe(ProbeConfig(every=probe_every, count=2),
                                              names=[n for n, _ in model.named_parameters()])]
              if probe_every else [])
    TrainingLoop(model, optimizer, iter(batches), total_steps=len(batches), recorder=recorder,
                 evaluation=EvaluationPlan(lambda m: (0.0, 0.0), 100, 100),
                 measurements=Measurements(probes=probes, sync_every=4)).run()
    steps = recorder.arrays("steps")
    np.testing.assert_array_equal(steps["loss"], expected[:, 0].astype(np.float32))
    for column, i in (("grad_norm", 1), ("grad_change", 2), ("update_norm", 3)):
        np.testing.assert_allclose(steps[column], expected[:, i], rtol=1e-5, err_msg=column)


# ---- precision ------------------------------------------------------------------------------


def test_precision_is_part_of_the_configuration():
    assert RecordConfig().to_dict()["precision"] == "float32"
    assert RecordConfig(precision="tf32").allow_tf32 is True
    assert RecordConfig(allow_tf32=True).precision == "tf32"
    bf16 = RecordConfig(precision="bf16")
    assert RecordConfig.from_dict(bf16.to_dict()) == bf16
    old = RecordConfig().to_dict()
    del old["precision"]  # records made before --precision
    assert RecordConfig.from_dict(old).precision == "float32"
    with pytest.raises(ConfigError, match="precision must be one of float32, tf32, bf16"):
        RecordConfig(precision="fp16")


def probe_config(**changes) -> RecordConfig:
    """One SGD step probed at tiny step lengths, where the gradient changes by little."""
    return busy(optimizer="sgd", lrs=(0.01,), max_steps=1, eval_every=None, taps=(),
                probe=ProbeConfig(every=1, count=3, low=1e-4, high=1e-2, spacing="log"),
                ics_layers=("features.stage3.conv1",), ics_every=1, **changes)


def first_probe(tmp_path, name, config):
    path = tmp_path / f"{name}.h5"
    record(config, path)
    rec = landscape.open_record(path)
    return rec, rec.load(next(iter(rec.runs)))


def test_bf16_training_is_probed_in_float32(tmp_path, monkeypatch):
    """bf16 autocast changes the training loss (it is on), and the probe measures gradient
    changes from a float32 reference: at a step length of 1e-6 the change agrees with a
    float32 run's. Measured from the bf16 gradient instead, it is dominated by bf16's rounding
    (tens of times larger): that is what the recomputed reference removes."""
    monkeypatch.setenv(tuning.ENV_FORMAT, "channels_last")
    rec32, f32 = first_probe(tmp_path, "f32", probe_config())
    rec16, b16 = first_probe(tmp_path, "b16", probe_config(precision="bf16"))
    assert rec16.config["precision"] == "bf16" and rec32.config["precision"] == "float32"
    assert f32.steps.loss[0] != b16.steps.loss[0]
    np.testing.assert_allclose(b16.steps.loss, f32.steps.loss, rtol=1e-2)
    np.testing.assert_allclose(b16.probe.grad_diff[0, 0], f32.probe.grad_diff[0, 0], rtol=0.1)
    np.testing.assert_allclose(b16.ics.distance, f32.ics.distance, rtol=0.1)

    monkeypatch.setattr(landscape.sweep.run, "is_reduced", lambda precision, device: False)
    # …and the instrument neither detects the autocast nor checks the replayed loss (which,
    # computed in float32, would differ from the bf16 loss and be refused).
    monkeypatch.setattr(landscape.training.instrument, "reduced_arithmetic", lambda device: None)
    monkeypatch.setattr(landscape.training.instrument.Instrument, "_replay_check",
                        lambda self, step, loss: None)
    _, unfixed = first_probe(tmp_path, "b16-training-reference", probe_config(precision="bf16"))
    assert unfixed.probe.grad_diff[0, 0] > 10 * f32.probe.grad_diff[0, 0]


def test_tf32_on_a_cpu_computes_what_float32_does(tmp_path, monkeypatch):
    monkeypatch.setenv(tuning.ENV_FORMAT, "channels_last")
    config = busy(max_steps=4)
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    record(config, a)
    record(config.with_changes(precision="tf32"), b)
    assert_records_equal(landscape.open_record(a), landscape.open_record(b))


def test_precision_flag_reaches_the_record(tmp_path):
    out = tmp_path / "r.h5"
    result = CliRunner().invoke(main, ["record", "--model", "vgg_bn", "--width", "0.125",
                                       "--batch-size", "16", "--max-steps", "2", "--subset",
                                       "64", "--device", "cpu", "--precision", "bf16",
                                       "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert landscape.open_record(out).config["precision"] == "bf16"


# ---- GPU: the training step never waits for the device ----------------------------------------


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_cuda_training_step_makes_no_host_sync(embedded):
    """torch raises on any synchronizing call inside the step (loss.item(), nonzero, a
    device-to-host copy): measurements stay on the device until the loop's host sync."""
    device = torch.device("cuda")
    torch.manual_seed(0)
    model = build_model("vgg_bn", width=0.25).to(device, memory_format=torch.channels_last)
    x = torch.from_numpy(embedded.train_x[:64]).float().to(device)
    y = torch.from_numpy(embedded.train_y[:64]).long().to(device)
    batches = iter([(x[:32], y[:32]), (x[32:], y[32:])] * 3)
    loop = TrainingLoop(model, torch.optim.Adam(model.parameters(), lr=1e-3), batches,
                        total_steps=6, recorder=MemoryRecorder(),
                        evaluation=EvaluationPlan(lambda m: (0.0, 0.0), 100, 100),
                        measurements=Measurements(sync_every=100))
    loop.step(0)  # first step: lazy initialization (optimizer state, cuDNN plans) may sync
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for step in range(1, 5):
            loop.step(step)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert len(loop.pending.steps) == 5
