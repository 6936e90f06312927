"""The axis model (any configuration field varied within one record) and --vary, without
training: validation in one line, the run grid, each run's configuration, run ids."""

import numpy as np
import pytest

from landscape.cli._vary import parse_vary
from landscape.config import RecordConfig, run_id
from landscape.errors import ConfigError

MODELS = ("vgg_light", "vgg_light_bn")


def config(**axes) -> RecordConfig:
    return RecordConfig(models=MODELS, lrs=(0.1,), optimizer="sgd", seeds=(0, 1), axes=axes)


def test_the_grid_is_seeds_then_levels_then_models_then_lrs():
    c = config(batch_size=(128, 256), norm_placement=("conv", "all"))
    grid = [(s, m, f) for s, m, _, f in c.grid()]
    per_seed = [("vgg_light", {"batch_size": 128}),
                ("vgg_light_bn", {"batch_size": 128, "norm_placement": "conv"}),
                ("vgg_light_bn", {"batch_size": 128, "norm_placement": "all"}),
                ("vgg_light", {"batch_size": 256}),
                ("vgg_light_bn", {"batch_size": 256, "norm_placement": "conv"}),
                ("vgg_light_bn", {"batch_size": 256, "norm_placement": "all"})]
    assert grid == [(s, m, f) for s in (0, 1) for m, f in per_seed]
    # BatchNorm's placement is refused for a network without it: that axis is not its own.
    assert c.axis_models("norm_placement") == ("vgg_light_bn",)
    assert c.axis_models("batch_size") == MODELS


def test_a_runs_configuration_is_the_records_with_its_levels():
    c = config(batch_size=(128, 256), weight_decay=(0.0, 5e-4))
    run = c.run_config("vgg_light_bn", 0.1, {"batch_size": 256, "weight_decay": 5e-4})
    assert (run.optim.batch_size, run.optim.weight_decay) == (256, 5e-4)
    assert run.model.models == ("vgg_light_bn",) and run.optim.lrs == (0.1,) and run.axes == ()
    assert run.seeds == (0, 1)  # the record's: the first draws the data all runs share
    # The probe direction "auto" follows each run's optimizer settings (weight decay: update).
    assert c.recording.probe.direction == "auto"
    assert run.recording.probe.direction == "update"
    assert c.run_config("vgg_light", 0.1, {"batch_size": 128, "weight_decay": 0.0}) \
        .recording.probe.direction == "gradient"


def test_axes_survive_the_records_json():
    c = config(batch_size=(128, 256), **{"optim.label_smoothing": (0.0, 0.1)})
    stored = c.to_dict()
    assert stored["axes"] == {"batch_size": [128, 256], "label_smoothing": [0.0, 0.1]}
    # New keys go last, older keys keep their bytes: axes, then issue 28's and issue 30's.
    assert list(stored)[-7:] == ["axes", "norm", "model_options", "normalize_from",
                                 "memory_format", "reproducible", "threads"]
    assert RecordConfig.from_dict(stored) == c
    assert RecordConfig.from_dict({k: v for k, v in stored.items() if k != "axes"}).axes == ()


def test_run_ids_name_the_levels():
    assert run_id("vgg_bn", 0.001, 2, {"batch_size": 128, "norm_placement": "conv"}) == \
        "vgg_bn_lr0.001_batch_size=128_norm_placement=conv_s2"
    assert run_id("vgg_bn", 0.001) == "vgg_bn_lr0.001"  # without axes, as before
    assert run_id("vgg", 0.1, None, {"flip": True, "dropout": None, "l2": 1e-4}) == \
        "vgg_lr0.1_flip=true_dropout=none_l2=0.0001"


@pytest.mark.parametrize("axes, message", [
    ({"dataset": ("cifar10", "mnist")}, "cannot vary dataset within one record: every run of "
                                        "a record shares it (the data"),
    ({"device": ("cpu", "cuda")}, "cannot vary device within one record"),
    ({"models": (("vgg",), ("vgg_bn",))}, "list them with --model"),
    ({"probe": (1, 2)}, "it says what is measured"),
    ({"batchsize": (1, 2)}, "no configuration field has that name; did you mean batch_size?"),
    ({"batch_size": (128,)}, "needs at least two values"),
    ({"batch_size": (128, 128)}, "a value of batch_size is listed twice"),
    ({"batch_size": (0, 128)}, "batch_size=0 for model vgg_light: batch size must be positive"),
    ({"norm_placement": ("conv", "middle")}, "norm_placement=middle for model vgg_light_bn"),
    ({"momentum": (0.0, 0.9), "optimizer": ("adam", "adamw")}, "momentum"),
])
def test_bad_axes_are_one_clear_line(axes, message):
    with pytest.raises(ConfigError) as error:
        config(**axes)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_vary_parses_each_value_as_its_field():
    assert parse_vary(("batch_size=128,256", "norm_placement=conv,all", "flip=true,false",
                       "dropout=none,0.5", "optim.weight_decay=0,5e-4")) == {
        "batch_size": (128, 256), "norm_placement": ("conv", "all"), "flip": (True, False),
        "dropout": (None, 0.5), "weight_decay": (0.0, 5e-4)}
    assert parse_vary(("optimizer=sgd,adam",)) == {"optimizer": ("sgd", "adam")}


@pytest.mark.parametrize("text, message", [
    ("batch_size=128,big", "--vary batch_size: 'big' is not a whole number"),
    ("optimizer=sgd,lbfgs", "--vary optimizer: 'lbfgs' is not one of sgd, adam"),
    ("epochs=none,x", "'x' is not a whole number or none"),
    ("mean=0.5,0.4", "cannot give values of a list field on the command line"),
    ("lr=0.1,0.2", "no configuration field has that name; did you mean lrs"),
])
def test_vary_refuses_bad_text(text, message):
    with pytest.raises(ConfigError) as error:
        parse_vary((text,))
    assert message in str(error.value)


def test_an_axis_value_refused_at_the_records_setting_may_suit_another_axis():
    # Momentum 0.9 is refused for adam (the record's optimizer) but every run is sgd/rmsprop.
    c = RecordConfig(models=MODELS, optimizer="adam", lrs=(0.1,),
                     axes={"optimizer": ("sgd", "rmsprop"), "momentum": (0.0, 0.9)})
    assert [f for _, m, _, f in c.grid() if m == "vgg_light"] == [
        {"optimizer": o, "momentum": mo} for o in ("sgd", "rmsprop") for mo in (0.0, 0.9)]


def test_a_preset_declares_axes_and_presets_lists_them():
    from click.testing import CliRunner

    from landscape.cli import main
    from landscape.config import PRESETS

    c = RecordConfig(**PRESETS["demo-placement"])
    assert [(a.name, a.values) for a in c.axes] == [("norm_placement", ("conv", "all")),
                                                    ("batch_size", (128, 256))]
    assert len(c.grid()) == 18  # 3 seeds x (the plain model at 2 batch sizes + BN at 2 x 2)
    out = CliRunner().invoke(main, ["presets"]).output
    assert "axes           norm_placement = conv, all; batch_size = 128, 256" in out


def test_the_run_limit_counts_the_levels():
    from landscape.sweep.limits import MAX_RUNS, check_counts

    lrs = tuple(0.001 * (i + 1) for i in range(50))
    small = RecordConfig(models=MODELS, lrs=lrs, seeds=tuple(range(10)))
    check_counts(small)  # 1,000 runs: the most a record holds
    assert len(small.grid()) == MAX_RUNS
    # Refused as the configuration is made, counted before any level is enumerated.
    with pytest.raises(ConfigError, match=r"2,000 runs \(.* x --vary batch_size\)"):
        small.with_changes(axes={"batch_size": (64, 128)})


def _pair(per_step: tuple[float, ...], matched: tuple[float, ...]):
    """A verdict of one metric from its single-seed ratios (3 seeds: a per-seed range)."""
    from analyses.confidence import bootstrap_ratio
    from landscape.report.verdicts import MetricVerdict, PairVerdict

    def estimate(ratios):
        return bootstrap_ratio(len(ratios), lambda seeds: float(np.median(
            [ratios[i] for i in seeds])))

    row = MetricVerdict("beta", estimate(per_step), estimate(matched))
    return PairVerdict("vgg", "vgg_bn", (0, 1, 2), "gradient", "sgd, lr 0.1", "", {}, (row,))


def test_verdict_changes_name_the_levels_where_a_verdict_differs():
    from landscape.report.factors import LevelVerdict, verdict_changes

    nan = float("nan")
    verdicts = [
        LevelVerdict({"batch_size": 128}, _pair((1.2, 1.3, 1.4), (nan, 1.1, 1.2))),
        LevelVerdict({"batch_size": 256}, _pair((0.8, 0.7, 0.9), (nan, nan, 1.2)))]
    lines = verdict_changes(verdicts)
    # All steps: smoother at 128, rougher at 256 (every seed). At matched loss neither level has
    # a verdict (a seed without a ratio of its own): not a change, however the reasons differ.
    assert lines == [
        "beta, all steps, vgg vs vgg_bn: the verdict changes with batch_size: smoother with BN "
        "(every seed) at batch_size 128 (1.3 [1.2, 1.4]); rougher with BN (every seed) at "
        "batch_size 256 (0.8 [0.7, 0.9])"]
    # Levels with the same verdict are named together, each with its ratio; a level without a
    # ratio of its own (no verdict) shows none.
    three = verdicts + [LevelVerdict({"batch_size": 512}, _pair((1.5, 1.6, 1.7), (1.1,) * 3))]
    assert verdict_changes(three)[0].endswith(
        "smoother with BN (every seed) at batch_size 128 (1.3 [1.2, 1.4]), 512 (1.6 [1.5, 1.7]); "
        "rougher with BN (every seed) at batch_size 256 (0.8 [0.7, 0.9])")
    assert verdict_changes(three)[1] == (
        "beta, matched loss, vgg vs vgg_bn: the verdict changes with batch_size: no verdict (2 of "
        "3 seeds have a ratio of their own) at batch_size 128; no verdict (1 of 3 seeds have a "
        "ratio of their own) at batch_size 256; smoother with BN (every seed) at batch_size 512 "
        "(1.1 [1.1, 1.1])")
    same = [LevelVerdict({"batch_size": b}, _pair((1.2, 1.3, 1.4), (1.1, 1.2, 1.3)))
            for b in (128, 256)]
    assert verdict_changes(same) == [
        "The verdicts are the same at every level of batch_size (128, 256)."]


def test_with_one_seed_a_ratio_on_the_other_side_of_1_is_a_change():
    """One seed has no interval and no verdict, only a ratio: a level whose ratio is on the
    other side of 1 is named (the course preset's β at lr 1e-4: 0.23 beside 1.6 to 4.9)."""
    from analyses.confidence import bootstrap_ratio
    from landscape.report.factors import LevelVerdict, verdict_changes
    from landscape.report.verdicts import MetricVerdict, PairVerdict

    def one_seed(ratio):
        row = MetricVerdict("beta", bootstrap_ratio(1, lambda seeds: ratio), None)
        return PairVerdict("vgg", "vgg_bn", (0,), "update", "adam, lr 1", "", {}, (row,))

    verdicts = [LevelVerdict({"lr": lr}, one_seed(r)) for lr, r in ((1e-4, 0.229), (1e-3, 2.2))]
    assert verdict_changes(verdicts) == [
        "beta, all steps, vgg vs vgg_bn: the verdict changes with lr: no interval (1 seed), ratio "
        "below 1 at lr 0.0001 (0.229); no interval (1 seed), ratio above 1 at lr 0.001 (2.2)"]
    same = [LevelVerdict({"lr": lr}, one_seed(r)) for lr, r in ((1e-4, 1.3), (1e-3, 2.2))]
    assert verdict_changes(same) == ["The verdicts are the same at every level of lr "
                                     "(0.0001, 0.001)."]
