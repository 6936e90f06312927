"""`landscape.record()` shows the bars `landscape record` shows (one per run, on stderr), and
nothing with `progress=False`."""

from landscape.config import RecordConfig
from landscape.sweep import record


def test_record_shows_a_bar_per_run_unless_told_not_to(tmp_path, capsys, one_thread):
    config = RecordConfig(models=("lenet5",), dataset="mnist", lrs=(0.01, 0.02), max_steps=3,
                          batch_size=16, device="cpu")
    record(config, tmp_path / "shown.h5")
    shown = capsys.readouterr().err
    for run in ("[1/2] lenet5 lr=0.01 seed=0", "[2/2] lenet5 lr=0.02 seed=0"):
        assert run in shown
    assert "3/3" in shown and "samples/s" in shown
    record(config, tmp_path / "quiet.h5", progress=False)
    assert capsys.readouterr().err == ""
