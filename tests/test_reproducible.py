"""Numbers that do not move with the machine's load (issue 30): every preset pins the memory
format (the one timed faster can change under load, and the formats round differently), and
--reproducible pins the format, torch's threads and deterministic kernels, kept in the record.
"""

from __future__ import annotations

import contextlib

import pytest
import torch

import landscape
import landscape.training.tuning as tuning
from landscape.config import RecordConfig, preset
from landscape.sweep import plan_runs
from landscape.sweep.formats import run_memory_formats
from landscape.training.contracts import NoProgress
from landscape.training.tasks import make_task

TINY = dict(models=("lenet5",), dataset="mnist", lrs=(0.01,), max_steps=2, batch_size=16,
            width=0.125, device="cpu")


@pytest.fixture
def contiguous_times_faster(monkeypatch, tmp_path):
    """A machine (or a moment of load) on which the timing picks contiguous; counts timings."""
    timed = []

    def fake_timing(*args, **kwargs):
        timed.append(1)
        return {"channels_last": 2.0, "contiguous": 1.0}

    monkeypatch.setenv("LANDSCAPE_MEMORY_FORMAT", "auto")
    monkeypatch.setenv("LANDSCAPE_TUNING_CACHE", "off")
    monkeypatch.setattr(tuning, "time_formats", fake_timing)
    return timed


@pytest.mark.parametrize("name", ["demo-paper", "demo-course", "demo-placement", "paper",
                                  "course"])
def test_presets_train_in_one_format_whatever_is_timed(name, contiguous_times_faster):
    values = {**preset(name), **TINY, "seeds": (0,)}
    values.pop("axes", None)
    config = RecordConfig(**values)
    assert config.memory_format == "channels_last"
    task = make_task(config, torch.device("cpu"))
    formats = run_memory_formats(config, task, torch.device("cpu"), plan_runs(config))
    assert set(formats.values()) == {"channels_last"} and not contiguous_times_faster
    # Without the pin the timing decides (and picks contiguous here).
    auto = config.with_changes(memory_format="auto")
    assert set(run_memory_formats(auto, task, torch.device("cpu"),
                                  plan_runs(auto)).values()) == {"contiguous"}


def test_reproducible_pins_and_records_what_it_pins(tmp_path, contiguous_times_faster):
    seen = []

    @contextlib.contextmanager
    def progress(plan, n_runs, total):
        seen.append((torch.are_deterministic_algorithms_enabled(), torch.get_num_threads(),
                     torch.backends.cudnn.benchmark))
        yield NoProgress()

    before = torch.get_num_threads()
    threads = 1 if before > 1 else 2
    out = tmp_path / "r.h5"
    landscape.record(RecordConfig(**TINY, reproducible=True, threads=threads), out,
                     progress=progress)
    assert seen == [(True, threads, False)]
    assert not torch.are_deterministic_algorithms_enabled()  # given back afterwards
    assert torch.get_num_threads() == before
    rec = landscape.open_record(out)
    assert (rec.config["reproducible"], rec.config["threads"]) == (True, threads)
    assert rec.config["memory_format"] == "auto"  # pinned by reproducible: channels_last
    assert rec.runs["lenet5_lr0.01"].attrs["memory_format"] == "channels_last"
    assert not contiguous_times_faster
    # Without --threads, the count this machine used is the one kept (and --resume replays it).
    landscape.record(RecordConfig(**TINY, reproducible=True), tmp_path / "s.h5")
    assert landscape.open_record(tmp_path / "s.h5").config["threads"] == before


@pytest.mark.parametrize("values, says", [
    (dict(memory_format="nhwc"), "memory_format must be one of auto, channels_last, "
                                 "contiguous, got 'nhwc'"),
    (dict(threads=0), "threads must be from 1 to 1,024, got 0"),
    (dict(reproducible="yes"), "reproducible must be true or false, got 'yes'"),
])
def test_the_pins_are_checked(values, says):
    with pytest.raises(landscape.errors.ConfigError, match=says):
        RecordConfig(**TINY, **values)
