"""`--save-weights-every/--save-weights-at`: the record keeps the model's state_dict at chosen
steps, exactly as training had it, without changing training."""

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from landscape import open_record
from landscape.cli import main
from landscape.errors import RecordError
from landscape.models import build_model
from landscape.kept.models import load_model

from conftest import assert_records_equal


def record(out, tiny_args, *extra):
    result = CliRunner().invoke(main, ["record", "--model", "vgg_bn", "--lrs", "0.05",
                                       "--optimizer", "sgd", "--momentum", "0.9", *tiny_args,
                                       *map(str, extra), "-o", str(out)])
    assert result.exit_code == 0, result.output
    return open_record(out)


@pytest.fixture(scope="module")
def records(tmp_path_factory, cifar_dir, one_thread):
    from conftest import TINY
    tiny = [*TINY, "--data-dir", str(cifar_dir), "--no-verify"]
    root = tmp_path_factory.mktemp("weights")
    plain = record(root / "plain.h5", tiny)
    kept = record(root / "kept.h5", tiny, "--save-weights-every", "2", "--save-weights-at",
                  "3,end")
    short = [a if a != "6" else "3" for a in tiny]  # --max-steps 3
    three = record(root / "three.h5", short, "--save-weights-at", "end")
    return plain, kept, three


def test_keeping_weights_leaves_training_identical(records):
    plain, kept, _ = records
    assert_records_equal(plain, kept)


def test_weights_are_kept_at_the_asked_steps_and_after_the_last(records):
    _, kept, _ = records
    run = next(iter(kept.runs))
    np.testing.assert_array_equal(kept.weight_steps(run), [0, 2, 3, 4, 6])
    assert kept.weights(run).step == 6  # the last ones kept: after the final step


def test_step_zero_weights_are_the_seeded_initialization(records):
    _, kept, _ = records
    run = next(iter(kept.runs))
    torch.manual_seed(0)
    init = build_model("vgg_bn", width=0.125).state_dict()
    saved = kept.weights(run, 0).state
    assert set(saved) == set(init)  # parameters and buffers (BN running statistics)
    for name, value in init.items():
        np.testing.assert_array_equal(saved[name], value.numpy(), err_msg=name)


def test_weights_at_a_step_equal_the_final_weights_of_a_run_stopped_there(records):
    """The weights kept at the start of step 3 are the weights after 3 steps: those a run of 3
    steps ends with (an independent record)."""
    _, kept, three = records
    run = next(iter(kept.runs))
    at3, final3 = kept.weights(run, 3), three.weights(run)
    assert final3.step == 3
    for name, value in at3.state.items():
        np.testing.assert_array_equal(value, final3.state[name], err_msg=name)


def test_load_model_rebuilds_the_run_with_its_weights(records):
    _, kept, _ = records
    run = next(iter(kept.runs))
    model, step = load_model(kept, run, 4)
    assert step == 4
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), kept.weights(run, 4).state[name])


def test_missing_weights_are_one_clear_error(records):
    plain, kept, _ = records
    run = next(iter(plain.runs))
    with pytest.raises(RecordError, match="kept no weights; record it with --save-weights"):
        plain.weights(run)
    with pytest.raises(RecordError, match="kept no weights at step 5; it kept them at steps "
                                          "0, 2, 3, 4, 6"):
        kept.weights(run, 5)


def test_weights_past_the_last_step_are_refused_before_the_file_exists(tmp_path, tiny_args):
    out = tmp_path / "late.h5"
    result = CliRunner().invoke(main, ["record", "--model", "vgg_bn", "--lrs", "0.05",
                                       *tiny_args, "--save-weights-at", "6", "-o", str(out)])
    assert result.exit_code != 0
    assert "--save-weights-at 6 is past the last step of these runs (steps 0 to 5); 'end'" \
        in result.output
    assert not out.exists()
    result = CliRunner().invoke(main, ["record", "--model", "vgg_bn", *tiny_args,
                                       "--save-weights-at", "3,last", "-o", str(out)])
    assert "--save-weights-at takes step numbers or 'end', got 'last'" in result.output


def test_info_says_when_weights_are_kept(records):
    _, kept, _ = records
    result = CliRunner().invoke(main, ["info", str(kept.path)])
    assert result.exit_code == 0, result.output
    assert "Weights kept: every 2 steps; at steps 3; after the last step" in result.output
