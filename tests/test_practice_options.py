"""Issue 20's training options, each against torch's or torchvision's own implementation:
activations, ResNet dropout, the losses, input normalization, torchvision's augmentations on a
fixed seed, early stopping on accuracy; and resuming with them on stays row-identical."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from torch import nn
from torchvision.transforms import v2

import landscape
from landscape.cli import main
from landscape.config import RecordConfig
from landscape.config.model_data import NORMALIZATIONS
from landscape.data import BatchOptions, BatchStream, DeviceImages, load_cifar10
from landscape.errors import ConfigError
from landscape.training.losses import summed_loss, training_loss
from landscape.models import build_model
from landscape.models.activations import ACTIVATIONS
from landscape.sweep import record, resume
from landscape.training.evaluation import early_stop_due

from conftest import assert_records_equal

pytestmark = pytest.mark.usefixtures("one_thread")

TORCH_ACTIVATIONS = {"relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "elu": nn.ELU, "gelu": nn.GELU,
                     "silu": nn.SiLU, "swish": nn.SiLU, "mish": nn.Mish, "tanh": nn.Tanh}
FAMILIES = ["vgg_bn", "vgg_light", "resnet18", "resnet20_bn", "cnn3", "lenet_bn", "lenet5"]


def tiny(cifar_dir, **changes) -> RecordConfig:
    values = dict(models=("cnn3",), lrs=(0.01,), optimizer="sgd", width=0.125, batch_size=32,
                  max_steps=1, device="cpu", data_dir=str(cifar_dir), verify_md5=False, taps=())
    values.update(changes)
    return RecordConfig(**values)


# ---- activations and ResNet dropout ------------------------------------------------------------

@pytest.mark.parametrize("name", FAMILIES)
def test_every_family_takes_every_activation_as_torchs_module(name):
    names = None
    for activation in ACTIVATIONS:
        model = build_model(name, width=0.125, activation=activation)
        kinds = {type(m) for m in model.modules()
                 if isinstance(m, tuple(set(TORCH_ACTIVATIONS.values())))}
        assert kinds == {TORCH_ACTIVATIONS[activation]}, (activation, kinds)
        # Activations have no parameters: the layout of a record does not change.
        keys = list(model.state_dict())
        assert names is None or keys == names
        names = keys
    leaky = [m for m in build_model(name, width=0.125, activation="leaky_relu").modules()
             if isinstance(m, nn.LeakyReLU)]
    assert leaky and all(m.negative_slope == 0.01 for m in leaky)


@pytest.mark.parametrize("activation, function", [
    ("mish", F.mish), ("leaky_relu", F.leaky_relu), ("gelu", F.gelu), ("tanh", torch.tanh)])
def test_cnn3_forward_is_the_composition_of_torchs_functions(activation, function):
    """cnn3's output recomputed from its weights with torch.nn.functional."""
    torch.manual_seed(0)
    model = build_model("cnn3", width=0.25, activation=activation).eval()
    x = torch.randn(4, 3, 32, 32)
    h = x
    for block in model.features:
        h = F.max_pool2d(function(F.conv2d(h, block.conv.weight, block.conv.bias, padding=1)), 2)
    expected = F.linear(h.flatten(1), model.classifier.fc.weight, model.classifier.fc.bias)
    torch.testing.assert_close(model(x), expected)


@pytest.mark.parametrize("name", ["resnet20", "resnet18_bn"])
def test_resnet_dropout_before_the_classifier(name):
    torch.manual_seed(0)
    plain = build_model(name, width=0.125)
    torch.manual_seed(0)
    dropped = build_model(name, width=0.125, dropout=0.5)
    assert list(plain.state_dict()) == list(dropped.state_dict())
    assert isinstance(dropped.drop, nn.Dropout) and dropped.drop.p == 0.5
    x = torch.randn(8, 3, 32, 32)
    torch.testing.assert_close(plain.eval()(x), dropped.eval()(x))  # eval: no dropout
    dropped.train()
    torch.manual_seed(1)
    out = dropped(x)
    torch.manual_seed(1)  # the same mask: nothing else in the forward pass draws
    pooled = dropped.stages(dropped.stem(x)).mean((2, 3))  # (batch, channels)
    torch.testing.assert_close(out, dropped.fc(F.dropout(pooled, 0.5, training=True)))
    assert not torch.allclose(out, dropped.fc(pooled))


def test_norm_placement_reaches_the_model(cifar_dir):
    cfg = tiny(cifar_dir, models=("vgg_bn",), norm_placement="conv", activation="elu")
    model = build_model("vgg_bn", **cfg.model.options())
    assert isinstance(model.features.stage1.norm1, nn.BatchNorm2d)
    assert isinstance(model.classifier.norm1, nn.Identity)
    assert isinstance(model.classifier.relu1, nn.ELU)
    with pytest.raises(ConfigError, match="has none"):
        tiny(cifar_dir, models=("vgg",), norm_placement="conv")
    with pytest.raises(ConfigError, match="model 'resnet20_bn' has no option"):
        tiny(cifar_dir, models=("resnet20_bn",), norm_placement="conv")


# ---- losses -------------------------------------------------------------------------------------

def test_losses_are_torchs():
    torch.manual_seed(0)
    logits, y = torch.randn(16, 10, dtype=torch.float64), torch.randint(0, 10, (16,))
    torch.testing.assert_close(training_loss("nll")(logits, y), F.cross_entropy(logits, y))
    torch.testing.assert_close(training_loss("nll")(logits, y),
                               nn.NLLLoss()(nn.LogSoftmax(dim=1)(logits), y))
    one_hot = torch.zeros(16, 10, dtype=torch.float64)
    one_hot[torch.arange(16), y] = 1
    torch.testing.assert_close(training_loss("mse")(logits, y), nn.MSELoss()(logits, one_hot))
    for name in ("cross_entropy", "nll", "mse"):  # the held-out sums are n x the mean
        torch.testing.assert_close(summed_loss(name, logits, y) / 16,
                                   training_loss(name)(logits, y))
    with pytest.raises(ConfigError, match="label smoothing"):
        training_loss("mse", label_smoothing=0.1)


def first_batch(cifar_dir, mean=(0.5,) * 3, std=(0.5,) * 3):
    """The stream's first batch without augmentation, built independently."""
    data = load_cifar10(cifar_dir, verify_md5=False)
    idx = torch.randperm(len(data.train_y), generator=torch.Generator().manual_seed(0))[:32]
    mean, std = torch.tensor(mean).view(1, -1, 1, 1), torch.tensor(std).view(1, -1, 1, 1)
    x = (torch.from_numpy(data.train_x).float()[idx] / 255 - mean) / std
    return x.contiguous(memory_format=torch.channels_last), torch.from_numpy(data.train_y)[idx]


@pytest.mark.parametrize("loss", ["nll", "mse"])
def test_the_recorded_loss_is_the_chosen_loss(tmp_path, cifar_dir, loss):
    """Step 0's recorded loss is torch's loss of the initial model on the first batch, and the
    held-out loss is that loss over the held-out images."""
    cfg = tiny(cifar_dir, loss=loss)
    record(cfg, tmp_path / "r.h5")
    rec = landscape.open_record(tmp_path / "r.h5")
    torch.manual_seed(0)
    model = build_model("cnn3", width=0.125).to(memory_format=torch.channels_last)
    x, y = first_batch(cifar_dir)
    with torch.no_grad():
        logits = model(x)
    expected = (F.cross_entropy(logits, y) if loss == "nll"
                else nn.MSELoss()(logits, F.one_hot(y, 10).float()))
    np.testing.assert_allclose(rec.load("cnn3_lr0.01").steps.loss[0], float(expected),
                               rtol=1e-5)
    assert rec.config["loss"] == loss
    shown = CliRunner().invoke(main, ["info", str(tmp_path / "r.h5")])
    assert f"loss {loss}" in shown.output and "time" in shown.output


# ---- input normalization -----------------------------------------------------------------------

def test_named_normalization_is_the_first_batch(tmp_path, cifar_dir):
    out = tmp_path / "r.h5"
    result = CliRunner().invoke(main, [
        "record", "--model", "cnn3", "--lrs", "0.01", "--optimizer", "sgd", "--width", "0.125",
        "--batch-size", "32", "--max-steps", "1", "--device", "cpu", "--tap", "final",
        "--data-dir", str(cifar_dir), "--no-verify", "--normalize", "cifar10-legacy",
        "-o", str(out)])
    assert result.exit_code == 0, result.output
    cfg = landscape.open_record(out).config
    mean, std = NORMALIZATIONS["cifar10-legacy"]
    assert tuple(cfg["mean"]) == mean and tuple(cfg["std"]) == std
    torch.manual_seed(0)
    model = build_model("cnn3", width=0.125).to(memory_format=torch.channels_last)
    x, y = first_batch(cifar_dir, mean, std)
    with torch.no_grad():
        expected = F.cross_entropy(model(x), y)
    np.testing.assert_allclose(landscape.open_record(out).load("cnn3_lr0.01").steps.loss[0],
                               float(expected), rtol=1e-5)
    shown = CliRunner().invoke(main, ["info", str(out)])
    assert "input mean 0.4914,0.4822,0.4465, std 0.2023,0.1994,0.201" in shown.output


# ---- torchvision's augmentations on a fixed seed ------------------------------------------------

def stream_of(x, y, seed=0, **options):
    return BatchStream(DeviceImages(x, y, torch.device("cpu")),
                       BatchOptions(batch_size=16, **options), seed=seed)


@pytest.mark.parametrize("options, transform", [
    (dict(autoaugment=True), v2.AutoAugment(v2.AutoAugmentPolicy.CIFAR10)),
    (dict(rotation=20.0), v2.RandomRotation(20.0)),
    (dict(color_jitter=(0.4, 0.3, 0.2)), v2.ColorJitter(0.4, 0.3, 0.2)),
], ids=["autoaugment", "rotation", "jitter"])
def test_augmentation_is_torchvisions_on_seeds_drawn_with_the_epoch(embedded, options, transform):
    x, y = embedded.train_x[:48], embedded.train_y[:48]
    rng_before = torch.get_rng_state()
    (batch, labels), = [next(stream_of(x, y, **options).batches())]
    assert torch.equal(torch.get_rng_state(), rng_before)  # dropout's stream is untouched
    generator = torch.Generator().manual_seed(0)
    order = torch.randperm(48, generator=generator)
    seeds = torch.randint(0, 2 ** 62, (48,), generator=generator, dtype=torch.int64)
    expected = []
    for i in range(16):
        torch.manual_seed(int(seeds[i]))
        expected.append(transform(torch.from_numpy(x[int(order[i])])))
    expected = (torch.stack(expected).float() - 127.5) / 127.5
    torch.testing.assert_close(batch, expected, rtol=0, atol=0)
    assert torch.equal(labels, torch.from_numpy(y)[order[:16]])
    plain = (torch.from_numpy(x)[order[:16]].float() - 127.5) / 127.5
    assert not torch.equal(batch, plain)


def test_a_restored_stream_repeats_the_augmented_batches(embedded):
    x, y = embedded.train_x[:64], embedded.train_y[:64]
    options = dict(autoaugment=True, rotation=10.0, color_jitter=(0.2, 0.2, 0.2), flip=True,
                   crop_padding=2, erase_prob=0.5, erase_scale=(0.1, 0.2))
    stream = stream_of(x, y, **options)
    batches = stream.batches()
    for _ in range(5):  # into the second epoch
        next(batches)
    state = stream.state()
    after = [next(batches)[0] for _ in range(3)]
    other = stream_of(x, y, **options)
    other.restore(state)
    again = other.batches()
    for batch in after:
        assert torch.equal(next(again)[0], batch)


def test_erase_scale_bounds_the_rectangles(embedded):
    x, y = embedded.train_x[:64], embedded.train_y[:64]
    batch, _ = next(stream_of(x, y, erase_prob=1.0, erase_scale=(0.25, 0.3)).batches())
    erased = (batch == 0).all(1).float().mean((1, 2))  # fraction of pixels set to 0
    # Rounding of the sides moves the area a little around [0.25, 0.3] of 1024 pixels.
    assert erased.min() > 0.2 and erased.max() < 0.36


# ---- early stopping on accuracy -----------------------------------------------------------------

def test_early_stop_rule_with_a_minimum_gain():
    assert not early_stop_due([1.0, 0.95, 0.9], 2, min_delta=0.04)
    assert early_stop_due([1.0, 0.98, 0.97], 2, min_delta=0.04)  # gains on the best < 0.04
    assert not early_stop_due([1.0, 0.98, 0.97], 2)
    assert not early_stop_due([1.0, 0.97, 0.95], 2, min_delta=0.04)  # 0.05 below the best
    assert early_stop_due([-0.5, -0.5], 1)  # accuracy (negated) that does not rise


def early_config(cifar_dir, **changes):
    return tiny(cifar_dir, models=("vgg",), optimizer="adam", lrs=(0.05,), max_steps=40,
                eval_every=2, val_split=0.1, early_stop=2, early_stop_metric="acc",
                checkpoint_seconds=1e-9, **changes)


def test_early_stopping_on_accuracy_stops_where_the_rule_says(tmp_path, cifar_dir):
    path = tmp_path / "a.h5"
    record(early_config(cifar_dir, early_stop_min_delta=0.02), path)
    rec = landscape.open_record(path)
    info = rec.runs["vgg_lr0.05"]
    acc = (-rec.load("vgg_lr0.05").eval.val_acc).tolist()
    assert info.stop_reason == "early_stop" and info.steps_done < 40
    assert early_stop_due(acc, 2, 0.02) and not early_stop_due(acc[:-1], 2, 0.02)
    shown = CliRunner().invoke(main, ["info", str(path)])
    assert "validation accuracy improvement of more than 0.02" in shown.output


# ---- resuming with the options on ---------------------------------------------------------------

def practice_config(cifar_dir, **changes):
    """Everything of this issue that carries state across steps, on two models."""
    values = dict(models=("resnet20_bn", "cnn3"), optimizer="adamw", betas=(0.8, 0.99),
                  activation="mish", dropout=0.3, loss="mse", max_steps=4, eval_every=2,
                  autoaugment=True, rotation=10.0, color_jitter=(0.2, 0.2, 0.2), flip=True,
                  erase_prob=0.5, erase_scale=(0.05, 0.2), mean=NORMALIZATIONS["cifar10"][0],
                  std=NORMALIZATIONS["cifar10"][1], val_split=0.1, early_stop=10,
                  early_stop_metric="acc", early_stop_min_delta=0.01, keep_best=True,
                  checkpoint_seconds=1e-9)
    values.update(changes)
    return tiny(cifar_dir, **values)


@pytest.fixture(scope="module")
def practice_reference(tmp_path_factory, cifar_dir):
    path = tmp_path_factory.mktemp("practice") / "ref.h5"
    record(practice_config(cifar_dir), path)
    return landscape.open_record(path)


@pytest.mark.parametrize("stop_after", [2, 6])
def test_resume_with_the_options_on_is_row_identical(tmp_path, cifar_dir, practice_reference,
                                                     stop_after):
    """Stopped mid first run and mid second run, the resumed record equals the reference."""
    path = tmp_path / "r.h5"
    calls = iter(range(10 ** 6))
    results = record(practice_config(cifar_dir), path,
                     should_stop=lambda: next(calls) >= stop_after - 1)
    assert results[-1].outcome.status == "interrupted"
    resume(path)
    assert_records_equal(landscape.open_record(path), practice_reference)


def test_older_records_read_with_the_old_behaviour(cifar_dir):
    cfg = tiny(cifar_dir).to_dict()
    for key in ("norm_placement", "activation", "betas", "loss", "early_stop_metric",
                "early_stop_min_delta", "autoaugment", "rotation", "color_jitter",
                "erase_scale"):
        del cfg[key]
    old = RecordConfig.from_dict(cfg)
    assert old == tiny(cifar_dir)
    assert old.optim.loss == "cross_entropy" and old.model.options() == {"width": 0.125}


@pytest.mark.parametrize("optimizer, cls", [("adam", torch.optim.Adam),
                                            ("adamw", torch.optim.AdamW)])
def test_betas_reach_torchs_optimizer(cifar_dir, optimizer, cls):
    """Three steps on a quadratic (Adam's first step does not depend on its betas): the sweep's
    optimizer moves as torch's with those betas, and not as with torch's default betas."""
    from landscape.sweep.run import make_optimizer

    cfg = tiny(cifar_dir, optimizer=optimizer, betas=(0.5, 0.9), weight_decay=0.01)
    target = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64)

    def walk(make):
        w = torch.zeros(3, dtype=torch.float64, requires_grad=True)
        opt = make([w])
        for _ in range(3):
            opt.zero_grad()
            ((w - target) ** 2 * torch.tensor([1.0, 10.0, 100.0])).sum().backward()
            opt.step()
        return w.detach()

    ours = walk(lambda p: make_optimizer(cfg, p, 0.1))
    torch.testing.assert_close(ours, walk(lambda p: cls(p, lr=0.1, betas=(0.5, 0.9),
                                                        weight_decay=0.01)), rtol=0, atol=0)
    assert not torch.allclose(ours, walk(lambda p: cls(p, lr=0.1, weight_decay=0.01)))


# ---- the best weights by validation accuracy ----------------------------------------------------

def test_keep_best_keeps_each_new_best_and_step_best_finds_it(tmp_path, cifar_dir):
    """Weights are kept exactly at the evaluations that raise the running maximum of the
    validation accuracy; the model rebuilt from `--step best` scores that accuracy again."""
    from landscape.kept.models import kept_step, load_model
    from landscape.training.tasks import make_task

    path = tmp_path / "b.h5"
    cfg = tiny(cifar_dir, models=("cnn3_bn",), optimizer="adam", lrs=(0.01,), max_steps=12,
               eval_every=2, val_split=0.1, keep_best=True, activation="silu")
    record(cfg, path)
    rec = landscape.open_record(path)
    ev = rec.load("cnn3_bn_lr0.01").eval
    running = np.maximum.accumulate(ev.val_acc)
    new_best = ev.step[np.r_[True, running[1:] > running[:-1]]]
    np.testing.assert_array_equal(rec.weight_steps("cnn3_bn_lr0.01"), new_best)
    best = kept_step(rec, "cnn3_bn_lr0.01", "best")
    assert best == new_best[-1] and ev.val_acc[list(ev.step).index(best)] == ev.val_acc.max()
    model, step = load_model(rec, "cnn3_bn_lr0.01", best)
    task = make_task(cfg, torch.device("cpu"))
    assert step == best and task.validate(model)[1] == ev.val_acc.max()
    shown = CliRunner().invoke(main, ["prune", str(path), "--run", "cnn3_bn_lr0.01",
                                      "--layer", "fc", "--fractions", "0,50", "--step", "best",
                                      "--out", str(tmp_path / "p.png")])
    assert shown.exit_code == 0, shown.output
    assert f"weights after step {best}" in shown.output
    with pytest.raises(ConfigError, match="needs --val-split|needs data.val_split"):
        tiny(cifar_dir, keep_best=True)


def test_several_layers_are_pruned_together(tmp_path, cifar_dir):
    """conv and linear layer at once: each loses the percentage of its own groups; with all of
    fc zeroed the logits are fc's bias, so the accuracy is the share of its argmax class."""
    from landscape.kept.prune import prune_run
    from landscape.kept.models import load_model

    path = tmp_path / "p.h5"
    record(tiny(cifar_dir, max_steps=2, save_final_weights=True), path)
    result = prune_run(path, "cnn3_lr0.01", "block1.conv,fc", [0, 50, 100])
    model, _ = load_model(landscape.open_record(path), "cnn3_lr0.01")
    filters, fc = model.features.block1.conv.weight.shape[0], model.classifier.fc.weight.numel()
    assert result.layer == "features.block1.conv.weight, classifier.fc.weight"
    assert result.groups == filters + fc and result.group_kind == "groups"
    assert [r.zeroed for r in result.rows] == [0, round(filters / 2) + round(fc / 2),
                                               filters + fc]
    single = prune_run(path, "cnn3_lr0.01", "fc", [0])
    assert result.rows[0].accuracy == single.rows[0].accuracy
    labels = landscape.data.load_cifar10(cifar_dir, verify_md5=False).test_y
    majority = int(model.classifier.fc.bias.argmax())
    assert result.rows[2].accuracy == pytest.approx(np.mean(labels == majority))
    shown = CliRunner().invoke(main, ["prune", str(path), "--run", "cnn3_lr0.01", "--layer",
                                      "block1.conv,fc", "--fractions", "0,50"])
    assert shown.exit_code == 0, shown.output
    assert (tmp_path / "p-prune-block1.conv+fc.png").exists()


# ---- starting from another record's weights -----------------------------------------------------

def test_init_from_another_records_weights(tmp_path, cifar_dir):
    """Pretrain with SGD, continue with DessiLBI: the second record's weights at step 0 are
    the first record's final weights, whatever its seed; a misfit is refused before writing."""
    first = tmp_path / "pre.h5"
    record(tiny(cifar_dir, max_steps=3, save_final_weights=True), first)
    pre = landscape.open_record(first).weights("cnn3_lr0.01")
    second = tmp_path / "slbi.h5"
    result = CliRunner().invoke(main, [
        "record", "--model", "cnn3", "--lrs", "0.01", "--optimizer", "slbi", "--width",
        "0.125", "--batch-size", "32", "--max-steps", "2", "--device", "cpu", "--seed", "5",
        "--data-dir", str(cifar_dir), "--no-verify", "--save-weights-at", "0",
        "--init-from", f"{first}:cnn3_lr0.01@final", "-o", str(second)])
    assert result.exit_code == 0, result.output
    rec = landscape.open_record(second)
    kept = rec.weights("cnn3_lr0.01", 0)
    assert pre.step == 3 and set(kept.state) == set(pre.state)
    for name, value in pre.state.items():
        np.testing.assert_array_equal(kept.state[name], value)
    assert rec.config["init_from"] == f"{first.resolve()}:cnn3_lr0.01@final"
    shown = CliRunner().invoke(main, ["info", str(second)])
    assert "initialized from" in shown.output
    bad = CliRunner().invoke(main, [
        "record", "--model", "cnn3_bn", "--lrs", "0.01", "--width", "0.125", "--max-steps", "1",
        "--device", "cpu", "--data-dir", str(cifar_dir), "--no-verify",
        "--init-from", f"{first}:cnn3_lr0.01", "-o", str(tmp_path / "bad.h5")])
    assert bad.exit_code == 1 and "do not fit model 'cnn3_bn' (it lacks" in bad.output
    assert not (tmp_path / "bad.h5").exists()


def test_wall_time_is_shown_in_minutes_and_hours():
    from landscape.cli.common import duration

    assert [duration(s) for s in (4.26, 725, 11_220, float("nan"))] == \
        ["4.3s", "12m05s", "3h07m", "-"]


# ---- the band width and weight histogram figures ------------------------------------------------

def test_band_width_and_weight_histograms(tmp_path, cifar_dir):
    from landscape.plot import all_figures
    from landscape.report import group_by_model, load_runs, loss_envelopes
    from landscape.report.practice import band_widths, weight_histograms

    path = tmp_path / "f.h5"
    record(tiny(cifar_dir, lrs=(0.01, 0.05), max_steps=3, save_final_weights=True, l1=1e-4),
           path)
    runs = load_runs([path])
    widths = band_widths(loss_envelopes(group_by_model(runs)))
    losses = np.stack([r.data.steps.loss for r in runs])
    np.testing.assert_array_equal(widths["cnn3"].width, losses.max(0) - losses.min(0))
    histograms = weight_histograms(runs, bins=10)
    rec = landscape.open_record(path)
    assert {h.layer for h in histograms} == {"features.block1.conv.weight",
                                             "features.block2.conv.weight",
                                             "features.block3.conv.weight",
                                             "classifier.fc.weight"}
    for h in histograms:
        w = rec.weights(h.run_id).state[h.layer].astype(np.float64).ravel()
        np.testing.assert_array_equal(h.counts, np.histogram(w, bins=h.edges)[0])
        assert h.counts.sum() == w.size and h.step == 3
        assert h.l1 == pytest.approx(np.abs(w).sum()) and h.l2 == pytest.approx(np.linalg.norm(w))
    figures = all_figures(runs)
    assert {"loss_envelope_width", "weight_histograms"} <= set(figures)


def test_cli_practice_options_reach_the_record(tmp_path, cifar_dir):
    out = tmp_path / "r.h5"
    result = CliRunner().invoke(main, [
        "record", "--model", "vgg_bn", "--lrs", "0.01", "--optimizer", "adamw", "--betas",
        "0.8,0.99", "--activation", "swish", "--norm-placement", "conv", "--loss", "nll",
        "--val-split", "0.1", "--early-stop", "3", "--early-stop-on", "acc",
        "--early-stop-min-delta", "0.01", "--keep-best", "--mean", "0.4,0.5,0.6", "--std",
        "0.2,0.3,0.4", "--autoaugment", "--rotation", "5", "--color-jitter", "0.1,0.2,0.3",
        "--erase-prob", "0.5", "--erase-scale", "0.1,0.2", "--width", "0.125",
        "--batch-size", "32", "--max-steps", "1", "--device", "cpu",
        "--data-dir", str(cifar_dir), "--no-verify", "-o", str(out)])
    assert result.exit_code == 0, result.output
    cfg = landscape.open_record(out).config
    expected = dict(betas=[0.8, 0.99], activation="swish", norm_placement="conv", loss="nll",
                    early_stop_metric="acc", early_stop_min_delta=0.01, keep_best=True,
                    mean=[0.4, 0.5, 0.6], std=[0.2, 0.3, 0.4], autoaugment=True, rotation=5.0,
                    color_jitter=[0.1, 0.2, 0.3], erase_scale=[0.1, 0.2])
    assert {k: cfg[k] for k in expected} == expected
    shown = CliRunner().invoke(main, ["info", str(out)]).output
    for words in ("activation swish", "norm placement conv", "loss nll", "betas 0.8,0.99",
                  "AutoAugment", "rotation +-5 deg", "color jitter 0.1,0.2,0.3",
                  "erase scale 0.1,0.2", "new best validation accuracy"):
        assert words in shown, words
    again = CliRunner().invoke(main, ["record", "--resume", str(out), "--activation", "mish"])
    assert again.exit_code == 1 and "activation ('mish' given, 'swish' recorded)" in again.output
