"""landscape.Recorder: a model the project never saw, trained in a plain loop, recorded into the
record format; held against landscape record bit for bit, against float64 recomputations, and
against training without it."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from torch import nn

import landscape
from landscape.cli import main
from landscape.config import ProbeConfig, RecordConfig
from landscape.errors import InstrumentError, RecordError
from landscape.models import build_model
from landscape.training.tasks import make_task


class Mixer(nn.Module):
    """A small network of this test's own: a conv, an optional normalization, dropout, a
    linear head."""

    def __init__(self, norm: bool, dropout: float = 0.0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.norm = nn.BatchNorm2d(6) if norm else nn.Identity()
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(6 * 8 * 8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.max_pool2d(F.relu(self.norm(self.conv(x))), 4)
        return self.head(self.drop(h.flatten(1)))


@pytest.fixture(scope="module")
def batches(embedded):
    x = torch.from_numpy(embedded.train_x[:240]).float() / 127.5 - 1  # NCHW uint8
    y = torch.from_numpy(embedded.train_y[:240]).long()
    return [(x[i:i + 24], y[i:i + 24]) for i in range(0, 240, 24)]


def train(path, batches, *, norm: bool, run_id: str | None = None, dropout: float = 0.0,
          lr: float = 0.05, recorder: bool = True, steps: int | None = None, **options):
    """The ten-line loop, with the recorder (or without: `recorder=False`); the model."""
    torch.manual_seed(0)
    model = Mixer(norm, dropout)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    rec = (landscape.Recorder(path, model, optimizer, run_id=run_id or
                              ("mixer_bn" if norm else "mixer"), **options)
           if recorder else None)
    for x, y in batches[:steps]:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        if rec is not None:
            rec.step((x, y), loss)
        optimizer.step()
    if rec is not None:
        rec.close()
    return model


# ---- one code path: the plain loop and landscape record write the same rows ------------------


def test_a_plain_loop_with_the_recorder_writes_landscape_records_rows(tmp_path, one_thread):
    """vgg_light_bn on the embedded images: landscape record's run and a plain loop over the
    same batches, model and seed, with the Recorder, give bit-identical steps, probe and taps."""
    config = RecordConfig(models=("vgg_light_bn",), width=0.5, optimizer="sgd", lrs=(0.05,),
                          max_steps=10, subset=320, batch_size=32,
                          probe=ProbeConfig(every=4, count=3), ics_every=5,
                          ics_layers=("features.stage2.conv1",))
    builtin = tmp_path / "builtin.h5"
    landscape.record(config, builtin)
    device = torch.device("cpu")
    task = make_task(config, device).using(torch.channels_last)
    torch.manual_seed(0)
    model = build_model("vgg_light_bn", width=0.5).to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    mine = tmp_path / "mine.h5"
    with landscape.Recorder(mine, model, optimizer, run_id="vgg_light_bn",
                            probe=ProbeConfig(every=4, count=3), ics_every=5,
                            ics_layers=("features.stage2.conv1",)) as rec:
        for _, (x, y) in zip(range(10), task.stream(0).batches()):
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            rec.step((x, y), loss)
            optimizer.step()
    a = landscape.open_record(builtin)
    b = landscape.open_record(mine)
    ra, rb = a.load("vgg_light_bn_lr0.05"), b.load("vgg_light_bn")
    for table in ("steps", "probe", "ics"):
        for name, value in vars(getattr(ra, table)).items():
            if isinstance(value, np.ndarray):
                np.testing.assert_array_equal(value, getattr(getattr(rb, table), name),
                                              err_msg=f"{table}/{name}")
    tap = "classifier.fc3.weight"
    np.testing.assert_array_equal(a.tap("vgg_light_bn_lr0.05", tap).grad,
                                  b.tap("vgg_light_bn", tap).grad)
    np.testing.assert_array_equal(a.tap("vgg_light_bn_lr0.05", tap).weight_delta,
                                  b.tap("vgg_light_bn", tap).weight_delta)
    assert len(ra.steps.step) == 10 and len(ra.probe.step) == 3


# ---- faithful: the probe's values against float64, training untouched ------------------------


def kept_state(rec, run_id: str, step: int) -> dict[str, torch.Tensor]:
    """The weights a run kept at the start of `step`, floating-point ones in float64."""
    return {k: torch.as_tensor(v).double() if np.asarray(v).dtype.kind == "f"
            else torch.as_tensor(v) for k, v in rec.weights(run_id, step).state.items()}


def float64_probe(model_state, norm: bool, x, y, etas):
    """The paper's probe recomputed independently: a float64 copy of the model at w_t (BN in
    training mode), g_t in float64, the loss and ‖∇L(w_t) − ∇L(w_t − η g_t)‖ at each η."""
    twin = Mixer(norm).double().train()
    twin.load_state_dict(model_state)
    params = list(twin.parameters())
    w_t = [p.detach().clone() for p in params]

    def loss_and_grad():
        loss = F.cross_entropy(twin(x.double()), y)
        return loss.item(), torch.autograd.grad(loss, params)

    _, g_t = loss_and_grad()
    losses, diffs = [], []
    for eta in etas:
        with torch.no_grad():
            for p, w, g in zip(params, w_t, g_t):
                p.copy_(w - eta * g)
        loss, g = loss_and_grad()
        losses.append(loss)
        diffs.append(math.sqrt(sum(((a - b) ** 2).sum().item() for a, b in zip(g, g_t))))
    return np.array(losses), np.array(diffs)


@pytest.mark.parametrize("norm", [False, True])
def test_probe_values_equal_an_independent_float64_computation(tmp_path, batches, norm,
                                                               one_thread):
    path = tmp_path / "mine.h5"
    train(path, batches, norm=norm, probe=ProbeConfig(every=3, count=3), save_weights_every=3)
    rec = landscape.open_record(path)
    run_id = "mixer_bn" if norm else "mixer"
    run = rec.load(run_id)
    assert list(run.probe.step) == [0, 3, 6, 9]
    assert rec.runs[run_id].attrs["norm"] == ("bn" if norm else "none")
    assert rec.runs[run_id].attrs["family"] == "mixer"
    for row, step in enumerate(run.probe.step):
        state = kept_state(rec, run_id, int(step))  # w_t: kept at the start of the step
        x, y = batches[step]
        losses, diffs = float64_probe(state, norm, x, y, run.probe.eta[row])
        np.testing.assert_allclose(run.probe.loss[row], losses, rtol=2e-5)
        np.testing.assert_allclose(run.probe.grad_diff[row], diffs, rtol=1e-3, atol=1e-6)


def test_measuring_leaves_training_bit_identical_with_bn_and_dropout(tmp_path, batches,
                                                                     one_thread):
    """Every measurement on (probe every step, ICS, activations, Hessian, taps, kept weights):
    the weights after training equal those of the same loop without the recorder, and check
    mode finds nothing changed at any probed step."""
    plain = train(None, batches, norm=True, dropout=0.3, recorder=False)
    recorded = train(tmp_path / "r.h5", batches, norm=True, dropout=0.3, check=True,
                     probe=ProbeConfig(every=1, count=2), ics_every=2, ics_layers=("conv",),
                     activation_every=2, activation_layers=("norm",),
                     hessian=landscape.HessianConfig(every=5, k=1, iters=4, trace_samples=2),
                     save_weights_at=(0, 5))
    for (name, a), b in zip(plain.state_dict().items(), recorded.state_dict().values()):
        assert torch.equal(a, b), name
    run = landscape.open_record(tmp_path / "r.h5").load("mixer_bn")
    assert len(run.probe.step) == len(batches) and len(run.hessian.step) == 2
    assert list(run.activations) == ["norm"]


class LeakyProbe:
    """A probe that forgets to give back BatchNorm's running mean."""

    name = "probe"
    phase = "before_update"

    def due(self, step: int) -> bool:
        return step == 2

    def measure(self, ctx):
        ctx.model.norm.running_mean.add_(1.0)
        return {}


def test_check_mode_names_what_a_probe_changed(tmp_path, batches):
    torch.manual_seed(0)
    model = Mixer(True)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    rec = landscape.Recorder(tmp_path / "r.h5", model, optimizer, run_id="mixer_bn", check=True)
    rec.instrument.probes.append(LeakyProbe())
    with pytest.raises(InstrumentError, match="probe 'probe' at step 2 changed the buffer "
                                              "norm.running_mean"):
        with rec:
            for x, y in batches:
                optimizer.zero_grad()
                loss = F.cross_entropy(model(x), y)
                loss.backward()
                rec.step((x, y), loss)
                optimizer.step()
    status = landscape.open_record(tmp_path / "r.h5").runs["mixer_bn"]
    assert status.status == "interrupted" and status.steps_done == 2


# ---- the loops of practice: AMP, accumulation, clipping -----------------------------------------


def test_gradients_are_read_through_the_amp_scaler(tmp_path, batches, one_thread):
    """A GradScaler multiplies the loss by a power of two: the recorded gradient norms are
    those of the unscaled loop, whether the loop unscales before rec.step or leaves it to
    scaler.step."""
    def run(path, scale: bool, unscale_first: bool = False):
        torch.manual_seed(0)
        model = Mixer(True)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
        scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 10, enabled=scale)
        with landscape.Recorder(path, model, optimizer, run_id="mixer_bn", scaler=scaler,
                                probe=ProbeConfig(every=2, count=2)) as rec:
            for x, y in batches[:6]:
                optimizer.zero_grad()
                loss = F.cross_entropy(model(x), y)
                scaler.scale(loss).backward()
                if unscale_first:
                    scaler.unscale_(optimizer)
                rec.step((x, y), loss)
                scaler.step(optimizer)
                scaler.update()
        return landscape.open_record(path).load("mixer_bn")

    plain = run(tmp_path / "plain.h5", scale=False)
    for name, first in (("scaled", False), ("unscaled", True)):
        scaled = run(tmp_path / f"{name}.h5", scale=True, unscale_first=first)
        for column in ("loss", "grad_norm", "grad_change", "update_norm"):
            np.testing.assert_allclose(getattr(scaled.steps, column),
                                       getattr(plain.steps, column), rtol=1e-6, err_msg=column)
        np.testing.assert_allclose(scaled.probe.grad_diff, plain.probe.grad_diff, rtol=1e-5)


def test_an_accumulated_gradient_is_probed_on_its_micro_batches(tmp_path, batches, one_thread):
    """Two micro-batches per step, each loss halved: the recorded loss is their mean, and the
    probe at w_t − ηg_t equals a float64 recomputation of that mean (BatchNorm normalizes each
    micro-batch on its own, as in training)."""
    torch.manual_seed(0)
    model = Mixer(True)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    path = tmp_path / "acc.h5"
    with landscape.Recorder(path, model, optimizer, run_id="mixer_bn", save_weights_at=(2,),
                            probe=ProbeConfig(every=2, count=2)) as rec:
        for i in range(0, 8, 2):
            optimizer.zero_grad()
            total = 0.0
            for x, y in batches[i:i + 2]:
                loss = F.cross_entropy(model(x), y) / 2
                loss.backward()
                total = total + loss.detach()
            rec.step(micro_batches=batches[i:i + 2], loss=total)
            optimizer.step()
    rec = landscape.open_record(path)
    run = rec.load("mixer_bn")
    assert run.steps.step.tolist() == [0, 1, 2, 3]
    twin = Mixer(True).double().train()
    twin.load_state_dict(kept_state(rec, "mixer_bn", 2))
    params = list(twin.parameters())

    def mean_loss():
        return sum(F.cross_entropy(twin(x.double()), y) for x, y in batches[4:6]) / 2

    g_t = torch.autograd.grad(mean_loss(), params)
    with torch.no_grad():
        for p, g in zip(params, g_t):
            p.sub_(run.probe.eta[1, 0] * g)
    np.testing.assert_allclose(run.probe.loss[1, 0], mean_loss().item(), rtol=2e-5)


def test_a_clipped_gradient_is_recorded_raw_and_the_record_says_what_was_applied(
        tmp_path, batches):
    torch.manual_seed(0)
    model = Mixer(False)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    with landscape.Recorder(tmp_path / "c.h5", model, optimizer, run_id="mixer") as rec:
        for x, y in batches[:4]:
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            rec.step((x, y), loss)
            nn.utils.clip_grad_norm_(model.parameters(), max_norm=0.1)
            optimizer.step()
    steps = landscape.open_record(tmp_path / "c.h5").load("mixer").steps
    assert (steps.grad_norm > 0.1).all()
    np.testing.assert_allclose(steps.applied_grad_norm, 0.1, rtol=1e-4)
    np.testing.assert_allclose(steps.update_norm, 0.05 * 0.1, rtol=1e-3)


# ---- what cannot be made faithful is refused in one line ----------------------------------------


def test_a_closure_that_runs_the_step_once_is_recorded_and_others_are_refused(tmp_path,
                                                                           batches):
    """optimizer.step(closure) with rec.step inside the closure after backward (Lightning's
    automatic optimization) gives the plain loop's rows; rec.step before a closure that
    computes the gradient again, and LBFGS, are refused in one line."""
    plain = tmp_path / "plain.h5"
    train(plain, batches, norm=True, steps=4, probe=ProbeConfig(every=2, count=2))
    torch.manual_seed(0)
    model = Mixer(True)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    inside = tmp_path / "closure.h5"
    with landscape.Recorder(inside, model, optimizer, run_id="mixer_bn",
                            probe=ProbeConfig(every=2, count=2)) as rec:
        for x, y in batches[:4]:
            def closure():
                optimizer.zero_grad()
                loss = F.cross_entropy(model(x), y)
                loss.backward()
                rec.step((x, y), loss)
                return loss
            optimizer.step(closure)
    a = landscape.open_record(plain).load("mixer_bn")
    b = landscape.open_record(inside).load("mixer_bn")
    np.testing.assert_array_equal(a.steps.loss, b.steps.loss)
    np.testing.assert_array_equal(a.probe.grad_diff, b.probe.grad_diff)

    x, y = batches[0]
    with pytest.raises(InstrumentError, match=r"optimizer.step\(closure\) after rec.step"):
        with landscape.Recorder(tmp_path / "c.h5", model, optimizer, run_id="mixer") as rec:
            def again():
                optimizer.zero_grad()
                loss = F.cross_entropy(model(x), y)
                loss.backward()
                return loss
            rec.step((x, y), again())
            optimizer.step(again)
    with pytest.raises(InstrumentError, match="LBFGS"):
        landscape.Recorder(tmp_path / "l.h5", model, torch.optim.LBFGS(model.parameters()),
                           run_id="mixer")
    assert not (tmp_path / "l.h5").exists() and not (tmp_path / "l.h5.lock").exists()


class PrivateNoise(nn.Module):
    """Noise from a generator of its own, which the recorder cannot replay."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = Mixer(False)
        self.generator = torch.Generator().manual_seed(1)

    def forward(self, x):
        return self.inner(x + 0.1 * torch.randn(x.shape, generator=self.generator))


def test_random_draws_that_cannot_be_replayed_are_refused_at_the_first_probe(tmp_path,
                                                                            batches):
    torch.manual_seed(0)
    model = PrivateNoise()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    with pytest.raises(InstrumentError, match="draw random numbers only from torch's global "
                                              "generator"):
        with landscape.Recorder(tmp_path / "n.h5", model, optimizer, run_id="noisy",
                                probe=ProbeConfig(every=1)) as rec:
            for x, y in batches[:2]:
                optimizer.zero_grad()
                loss = F.cross_entropy(model(x), y)
                loss.backward()
                rec.step((x, y), loss)
                optimizer.step()


def test_bad_arguments_are_one_line_before_anything_is_written(tmp_path):
    model = Mixer(False)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    path = tmp_path / "r.h5"
    cases = [
        (dict(run_id="a/b"), "run_id must be a name"),
        (dict(run_id="x", norm=3), "norm names the run's normalization"),
        (dict(run_id="x", seed=-1), "seed is the seed"),
        (dict(run_id="x", probe_bn="half"), "probe_bn must be"),
        (dict(run_id="x", taps=("nope.weight",)), "unknown tap 'nope.weight'"),
        (dict(run_id="x", ics_every=2, ics_layers=("nope",)), "layer 'nope' has no parameters"),
        (dict(run_id="x", probes_every=3), "unknown option 'probes_every'"),
        (dict(run_id="x", keep_best=True), "keep_best"),
    ]
    for options, message in cases:
        with pytest.raises(landscape.LandscapeError, match=message):
            landscape.Recorder(path, model, optimizer, **options)
        assert not path.exists()
    with pytest.raises(landscape.ConfigError, match="optimizer must be a torch.optim.Optimizer"):
        landscape.Recorder(path, model, "sgd", run_id="x")
    with pytest.raises(RecordError, match="does not exist"):
        landscape.Recorder(tmp_path / "no" / "r.h5", model, optimizer, run_id="x")


# ---- several runs, one record: the verdict from landscape plot and report ----------------------


def test_runs_of_a_plain_loop_give_the_bn_verdict_in_plot_and_report(tmp_path, batches,
                                                                      one_thread):
    """Four Recorders in turn (BN and no BN, two seeds) write one record; `landscape info`,
    `plot` and `report` read it like landscape record's and give the BN vs no-BN verdict."""
    path = tmp_path / "mine.h5"
    for seed in (0, 1):
        for norm in (False, True):
            torch.manual_seed(seed)
            model = Mixer(norm)
            optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
            with landscape.Recorder(path, model, optimizer, family="mixer", seed=seed,
                                    run_id=f"mixer{'_bn' if norm else ''}_s{seed}",
                                    probe=ProbeConfig(every=2, count=2)) as rec:
                for x, y in batches[:6]:
                    optimizer.zero_grad()
                    loss = F.cross_entropy(model(x), y)
                    loss.backward()
                    rec.step((x, y), loss)
                    optimizer.step()
                rec.evaluate(batches[6:8])
    record = landscape.open_record(path)
    assert list(record.runs) == ["mixer_s0", "mixer_bn_s0", "mixer_s1", "mixer_bn_s1"]
    assert record.config["models"] == ["mixer", "mixer_bn"] and record.config["seeds"] == [0, 1]
    assert all(r.status == "complete" and r.steps_done == 6 for r in record.runs.values())
    runner = CliRunner()
    info = runner.invoke(main, ["info", str(path)])
    assert info.exit_code == 0, info.output
    assert "your own loop (landscape.Recorder): sgd, lr 0.05, batch 24" in info.output
    plot = runner.invoke(main, ["plot", str(path), "--out", str(tmp_path / "figures")])
    assert plot.exit_code == 0, plot.output
    assert "mixer (no BN) vs mixer_bn (BN): sgd, lr 0.05" in plot.output
    assert "predictiveness" in plot.output and "per-seed range" in plot.output
    report = runner.invoke(main, ["report", str(path), "-o", str(tmp_path / "r.html")])
    assert report.exit_code == 0, report.output
    page = (tmp_path / "r.html").read_text()
    assert "mixer (no BN) vs mixer_bn (BN)" in page and "your own loop" in page


def test_a_run_is_never_written_twice_and_a_landscape_record_is_not_joined(tmp_path, batches):
    path = tmp_path / "mine.h5"
    train(path, batches, norm=False, steps=2)
    with pytest.raises(RecordError, match="run 'mixer' is already in .* give another run_id"):
        train(path, batches, norm=False, steps=2)
    assert list(landscape.open_record(path).runs) == ["mixer"]
    builtin = tmp_path / "builtin.h5"
    landscape.record(RecordConfig(models=("lenet",), optimizer="sgd", lrs=(0.1,), max_steps=1,
                                  subset=64, batch_size=32, taps=()), builtin)
    with pytest.raises(RecordError, match="was made by landscape record"):
        train(builtin, batches, norm=False, steps=1)


def test_a_diverging_run_is_recorded_as_diverged(tmp_path, batches):
    path = tmp_path / "d.h5"
    torch.manual_seed(0)
    model = Mixer(False)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e6)
    with landscape.Recorder(path, model, optimizer, run_id="mixer", sync_every=1) as rec:
        for x, y in batches:
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            rec.step((x, y), loss)
            optimizer.step()
            if rec.diverged:
                break
    run = landscape.open_record(path).runs["mixer"]
    steps = landscape.open_record(path).load("mixer").steps
    assert run.status == "diverged" and run.diverged_step == steps.step[-1]
    assert not np.isfinite(steps.loss[-1]) and np.isfinite(steps.loss[:-1]).all()


# ---- interruptions: a killed loop leaves a record that opens, and resume=True continues ------

LOOP = """
import sys, time, torch, torch.nn.functional as F
sys.path.insert(0, {tests!r})
import landscape
from test_recorder import Mixer
torch.set_num_threads(1)
data = torch.load({data!r})
batches = list(zip(data["x"], data["y"]))
torch.manual_seed(0)
model = Mixer(True, dropout=0.3)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
with landscape.Recorder({path!r}, model, optimizer, run_id="mixer_bn", resume={resume},
                        probe=landscape.ProbeConfig(every=3, count=2), flush_seconds=0.05,
                        checkpoint_seconds=0.05, sync_every=1) as rec:
    for step in range(rec.next_step, len(batches)):
        x, y = batches[step]
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        rec.step((x, y), loss)
        optimizer.step()
        time.sleep({pause})
"""


def run_loop(tmp_path, path, *, resume=False, pause=0.0, wait=True):
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / f"loop_{path.stem}_{int(resume)}.py"
    script.write_text(LOOP.format(tests=str(Path(__file__).parent), data=str(tmp_path / "b.pt"),
                                  path=str(path), resume=resume, pause=pause))
    process = subprocess.Popen([sys.executable, str(script)], stderr=subprocess.PIPE, text=True)
    if wait:
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
    return process


def test_a_killed_loop_leaves_a_record_that_resume_continues_identically(tmp_path, batches):
    import signal
    import time

    x = torch.cat([b[0] for b in batches] * 3)
    y = torch.cat([b[1] for b in batches] * 3)
    torch.save({"x": list(x.split(24)), "y": list(y.split(24))}, tmp_path / "b.pt")
    whole = tmp_path / "whole.h5"
    run_loop(tmp_path, whole)
    killed = tmp_path / "killed.h5"
    process = run_loop(tmp_path, killed, pause=0.1, wait=False)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        time.sleep(0.2)
        try:
            if landscape.open_record(killed).runs["mixer_bn"].steps_done >= 8:
                break
        except (RecordError, KeyError):
            continue
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    left = landscape.open_record(killed)  # opens, with the rows up to the last flush
    done = left.runs["mixer_bn"].steps_done
    assert 8 <= done < 30 and left.runs["mixer_bn"].status == "running"
    assert len(left.load("mixer_bn").steps.step) >= done
    run_loop(tmp_path, killed, resume=True)
    a, b = landscape.open_record(whole), landscape.open_record(killed)
    assert b.runs["mixer_bn"].status == "complete" and b.runs["mixer_bn"].steps_done == 30
    ra, rb = a.load("mixer_bn"), b.load("mixer_bn")
    for table in ("steps", "probe"):
        for name, value in vars(getattr(ra, table)).items():
            np.testing.assert_array_equal(value, getattr(getattr(rb, table), name),
                                          err_msg=f"{table}/{name}")


def test_commands_that_rebuild_a_run_refuse_a_recorder_record_in_one_line(tmp_path, batches):
    path = tmp_path / "mine.h5"
    train(path, batches, norm=True, steps=3, save_weights_at=(1,))
    runner = CliRunner()
    for args in (["surface", str(path), "--run", "mixer_bn", "--step", "1"],
                 ["prune", str(path), "--run", "mixer_bn", "--layer", "conv"],
                 ["record", "--resume", str(path)]):
        result = runner.invoke(main, args)
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
        errors = [line for line in result.output.splitlines() if line.startswith("Error: ")]
        assert len(errors) == 1 and "Traceback" not in result.output, result.output
        assert "recorded by landscape.Recorder in your own loop" in errors[0]


def test_eval_mode_probing_is_a_labelled_option_with_its_own_reference(tmp_path, batches,
                                                                         one_thread):
    """probe_bn="eval" probes the model in eval mode (running statistics as the step's forward
    left them) from an eval-mode reference gradient; the record says so."""
    path = tmp_path / "eval.h5"
    train(path, batches, norm=True, steps=4, probe_bn="eval",
          probe=ProbeConfig(every=3, count=2), save_weights_at=(3,))
    rec = landscape.open_record(path)
    assert rec.runs["mixer_bn"].config["probe"]["bn"] == "eval"
    run = rec.load("mixer_bn")
    twin = Mixer(True).double()
    twin.load_state_dict(kept_state(rec, "mixer_bn", 3))
    x, y = batches[3]
    with torch.no_grad():
        twin.train()(x.double())  # the step's training forward moves the running statistics
    twin.eval()
    params = list(twin.parameters())
    w_t = [p.detach().clone() for p in params]
    train_twin = Mixer(True).double()
    train_twin.load_state_dict(kept_state(rec, "mixer_bn", 3))
    g_train = torch.autograd.grad(F.cross_entropy(train_twin.train()(x.double()), y),
                                  list(train_twin.parameters()))  # the direction trained along
    g_eval = torch.autograd.grad(F.cross_entropy(twin(x.double()), y), params)
    eta = run.probe.eta[1, 0]
    with torch.no_grad():
        for p, w, g in zip(params, w_t, g_train):
            p.copy_(w - eta * g)
    loss = F.cross_entropy(twin(x.double()), y)
    diff = torch.autograd.grad(loss, params)
    expected = math.sqrt(sum(((a - b) ** 2).sum().item() for a, b in zip(diff, g_eval)))
    np.testing.assert_allclose(run.probe.loss[1, 0], loss.item(), rtol=1e-4)
    np.testing.assert_allclose(run.probe.grad_diff[1, 0], expected, rtol=2e-3)
