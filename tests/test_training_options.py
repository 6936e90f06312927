"""Training options: optimizers, label smoothing, penalties, dropout, random erasing, the
validation split and early stopping, each checked against an independent computation."""

import math
from functools import partial

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import landscape
from landscape.training.checkpoint import checkpoint_path
from landscape.cli import main
from landscape.cli._flags import flag_message
from landscape.config import ProbeConfig, RecordConfig
from landscape.data import BatchOptions, BatchStream, DeviceImages, hold_out_validation
from landscape.data import load_cifar10
from landscape.data.augment import ERASE_ASPECT, ERASE_AREA, erase_boxes
from landscape.errors import ConfigError
from landscape.models import build_model
from landscape.training.recorder import MemoryRecorder
from landscape.training.schedules import learning_rate
from landscape.sweep import record, resume
from landscape.sweep.plans import model_options
from landscape.sweep.run import make_optimizer
from landscape.training.tasks import make_task
from landscape.training.evaluation import early_stop_due
from landscape.training.loop import train_run

from conftest import assert_records_equal

TAPS = ("classifier.fc3.weight", "features.stage1.conv1.weight")


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(cifar_dir, **changes) -> RecordConfig:
    values = dict(models=("vgg",), lrs=(0.01,), optimizer="sgd", width=0.125, batch_size=32,
                  max_steps=1, device="cpu", data_dir=str(cifar_dir), verify_md5=False,
                  taps=TAPS)
    values.update(changes)
    return RecordConfig(**values)


def first_batch(cifar_dir, seed=0):
    """The stream's first batch without augmentation, built independently: the seeded
    permutation's first 32 images, normalized with mean = std = 0.5 in pixel units."""
    data = load_cifar10(cifar_dir, verify_md5=False)
    idx = torch.randperm(len(data.train_y), generator=torch.Generator().manual_seed(seed))[:32]
    x = (torch.from_numpy(data.train_x).float()[idx] - 127.5) / 127.5
    return x.contiguous(memory_format=torch.channels_last), torch.from_numpy(data.train_y)[idx]


def initial_model(name="vgg", seed=0, **options):
    torch.manual_seed(seed)
    return build_model(name, width=0.125, **options).to(memory_format=torch.channels_last)


def one_step_record(tmp_path, cfg):
    record(cfg, tmp_path / "r.h5")
    rec = landscape.open_record(tmp_path / "r.h5")
    (run_id,) = rec.runs
    return rec, run_id


# ---- optimizers --------------------------------------------------------------------------------

@pytest.mark.parametrize("options, make", [
    (dict(optimizer="sgd", momentum=0.9, nesterov=True, weight_decay=1e-3),
     lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-3)),
    (dict(optimizer="adam", weight_decay=1e-3),
     lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=1e-3)),
    (dict(optimizer="adamw", weight_decay=0.1),
     lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1)),
    (dict(optimizer="rmsprop", momentum=0.5),
     lambda p: torch.optim.RMSprop(p, lr=0.01, momentum=0.5)),
], ids=["sgd-nesterov", "adam", "adamw", "rmsprop"])
def test_first_update_matches_torchs_optimizer(embedded, options, make):
    """The sweep's optimizer, driven by the training loop for one step, moves every parameter
    as torch's optimizer does in a plain step."""
    cfg = RecordConfig(models=("vgg_bn",), lrs=(0.01,), device="cpu", max_steps=1, **options)
    x = (torch.from_numpy(embedded.train_x[:8]).float() - 127.5) / 127.5
    x = x.contiguous(memory_format=torch.channels_last)
    y = torch.from_numpy(embedded.train_y[:8])
    model = initial_model("vgg_bn")
    train_run(model, make_optimizer(cfg, model.parameters(), 0.01), iter([(x, y)]),
              total_steps=1, steps_per_epoch=1, recorder=MemoryRecorder(),
              evaluate=lambda m: (0.0, 0.0),
              lr_schedule=partial(learning_rate, cfg, 0.01, steps_per_epoch=1, total_steps=1))
    reference = initial_model("vgg_bn")
    before = {n: p.detach().clone() for n, p in reference.named_parameters()}
    opt = make(reference.parameters())
    opt.zero_grad()
    torch.nn.functional.cross_entropy(reference(x), y).backward()
    opt.step()
    trained = dict(model.named_parameters())
    for name, p in reference.named_parameters():
        expected = (p.detach() - before[name]).numpy()
        assert np.abs(expected).max() > 0, name
        np.testing.assert_allclose((trained[name].detach() - before[name]).numpy(), expected,
                                   rtol=1e-5, atol=1e-9, err_msg=name)


@pytest.mark.parametrize("changes, message", [
    (dict(optimizer="adam", momentum=0.9), "--momentum applies to sgd, rmsprop and slbi only"),
    (dict(optimizer="adamw", momentum=0.9), "adamw has its own betas"),
    (dict(optimizer="sgd", nesterov=True), "--nesterov needs --optimizer sgd with --momentum > 0"),
    (dict(optimizer="rmsprop", momentum=0.9, nesterov=True), "--nesterov needs --optimizer sgd"),
    (dict(optimizer="lbfgs"), "unknown optimizer 'lbfgs'; valid: sgd, adam, adamw, rmsprop"),
    (dict(label_smoothing=-0.1), "--label-smoothing must be in [0, 1), got -0.1"),
    (dict(label_smoothing=1.0), "--label-smoothing must be in [0, 1)"),
    (dict(l1=-1e-5), "--l1 must be >= 0"),
    (dict(l2=float("nan")), "--l2 must be >= 0"),
    (dict(dropout=1.0), "--dropout must be in [0, 1), got 1.0"),
    (dict(erase_prob=1.5), "--erase-prob must be in [0, 1], got 1.5"),
    (dict(val_split=0.0), "--val-split must be a fraction in (0, 1), got 0.0"),
    (dict(val_split=1.0), "--val-split must be a fraction in (0, 1)"),
    (dict(early_stop=3), "--early-stop needs --val-split"),
    (dict(val_split=0.1, early_stop=0), "--early-stop must be at least 1"),
    (dict(models=("dln",), label_smoothing=0.1),
     "--label-smoothing applies to image classification; model 'dln' learns linear-regression"),
    (dict(models=("dln",), val_split=0.1), "--val-split applies to image classification"),
])
def test_bad_values_are_refused(cifar_dir, changes, message):
    with pytest.raises(ConfigError) as info:
        tiny(cifar_dir, **changes)
    # The library names fields (optim.l1); the command line shows its flags (--l1).
    assert message in flag_message(info.value)


# ---- the objective: label smoothing and penalties ----------------------------------------------

def test_label_smoothing_is_the_recorded_loss(tmp_path, cifar_dir):
    rec, run_id = one_step_record(tmp_path, tiny(cifar_dir, label_smoothing=0.1))
    x, y = first_batch(cifar_dir)
    logits = initial_model()(x)
    expected = torch.nn.functional.cross_entropy(logits, y, label_smoothing=0.1).item()
    plain = torch.nn.functional.cross_entropy(logits, y).item()
    loss = rec.load(run_id).steps.loss[0]
    assert loss == pytest.approx(expected, rel=1e-6)
    assert loss != pytest.approx(plain, rel=1e-5)  # it is not the plain loss


def test_penalties_are_part_of_the_recorded_loss_and_its_gradient(tmp_path, cifar_dir):
    l1, l2 = 1e-3, 1e-2
    rec, run_id = one_step_record(tmp_path, tiny(cifar_dir, l1=l1, l2=l2))
    model = initial_model()
    x, y = first_batch(cifar_dir)
    data_loss = torch.nn.functional.cross_entropy(model(x), y)
    data_loss.backward()
    w = {n: p.detach().double() for n, p in model.named_parameters()}
    penalty = (l1 * sum(v.abs().sum() for v in w.values())
               + l2 / 2 * sum((v ** 2).sum() for v in w.values())).item()
    assert penalty > 0.05  # large enough to be seen
    assert rec.load(run_id).steps.loss[0] == pytest.approx(data_loss.item() + penalty, rel=1e-6)
    # ∇(objective) = ∇(data loss) + l1 sign(w) + l2 w; SGD moves by −lr times that.
    name = "classifier.fc3.weight"
    param = dict(model.named_parameters())[name]
    expected = param.grad + l1 * torch.sign(param.detach()) + l2 * param.detach()
    np.testing.assert_allclose(rec.tap(run_id, name).grad[0], expected.numpy(), rtol=1e-4,
                               atol=1e-7)


def test_held_out_losses_are_plain_cross_entropy(cifar_dir):
    """Smoothing changes the training objective, not the evaluation."""
    task = make_task(tiny(cifar_dir, label_smoothing=0.2), torch.device("cpu"))
    model = initial_model()
    loss, _ = task.evaluate(model)
    data = load_cifar10(cifar_dir, verify_md5=False)
    x = (torch.from_numpy(data.test_x).float() - 127.5) / 127.5
    model.eval()
    with torch.no_grad():
        logits = model(x.contiguous(memory_format=torch.channels_last))
    y = torch.from_numpy(data.test_y)
    assert loss == pytest.approx(torch.nn.functional.cross_entropy(logits, y).item(), rel=1e-5)
    assert task.validate is None


# ---- dropout -----------------------------------------------------------------------------------

def test_dropout_reaches_the_model(cifar_dir):
    cfg = tiny(cifar_dir, models=("vgg_dropout",), dropout=0.3)
    model = build_model("vgg_dropout", **model_options(cfg))
    rates = [m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    assert rates == [0.3, 0.3]
    assert model_options(tiny(cifar_dir)) == {"width": 0.125}  # the model's own default


def test_a_model_without_dropout_refuses_it(tmp_path, cifar_dir):
    with pytest.raises(ConfigError, match="model 'lenet' has no option model.dropout"):
        record(tiny(cifar_dir, models=("lenet",), dropout=0.3, taps=()), tmp_path / "r.h5")
    assert not (tmp_path / "r.h5").exists()


# ---- random erasing ----------------------------------------------------------------------------

def stream_of(x, y, seed=0, **options):
    images = DeviceImages(x, y, torch.device("cpu"))
    return BatchStream(images, BatchOptions(batch_size=50, **options), seed=seed)


def take(stream, n):
    batches = stream.batches()
    return [next(batches) for _ in range(n)]


def test_erasing_keeps_labels_shapes_and_is_seeded(embedded):
    x, y = embedded.train_x[:200], embedded.train_y[:200]
    plain = take(stream_of(x, y, crop_padding=2, flip=True), 4)
    erased = take(stream_of(x, y, crop_padding=2, flip=True, erase_prob=0.5), 4)
    again = take(stream_of(x, y, crop_padding=2, flip=True, erase_prob=0.5), 4)
    other_seed = take(stream_of(x, y, seed=1, crop_padding=2, flip=True, erase_prob=0.5), 4)
    for (xp, yp), (xe, ye), (xa, ya) in zip(plain, erased, again):
        assert xe.shape == xp.shape and xe.dtype == xp.dtype
        assert torch.equal(ye, yp)  # the erasing draws come after the order's
        assert torch.equal(xe, xa) and torch.equal(ye, ya)  # same seed, same batches
        # Erasing only sets pixels to 0; everything else is the unerased batch.
        changed = xe != xp
        assert torch.all(xe[changed] == 0)
        assert changed.any()
    assert not all(torch.equal(a[0], b[0]) for a, b in zip(erased, other_seed))


def test_erased_rectangles_have_the_documented_geometry(embedded):
    """On a constant image the erased pixels (0 after normalization) must form one rectangle
    per erased image, of the drawn area and aspect ratio, in about p of the images."""
    n, p = 2000, 0.4
    x = np.full((n, 3, 32, 32), 200, dtype=np.uint8)
    y = np.zeros(n, dtype=np.int64)
    stream = stream_of(x, y, erase_prob=p)
    images = torch.cat([b for b, _ in take(stream, n // 50)])
    zero = (images == 0).all(dim=1)  # (n, 32, 32)
    assert torch.equal(zero, (images == 0).any(dim=1))  # all channels alike
    erased = zero.flatten(1).any(dim=1)
    assert abs(erased.float().mean().item() - p) < 0.04
    fractions, aspects = [], []
    for mask in zero[erased]:
        rows, cols = mask.any(dim=1).nonzero().flatten(), mask.any(dim=0).nonzero().flatten()
        box = mask[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
        assert box.all() and box.sum() == mask.sum()  # exactly one filled rectangle
        h, w = box.shape
        fractions.append(h * w / 1024)
        aspects.append(h / w)
    # The drawn area fraction is in [0.02, 0.33] and the ratio in [0.3, 3.3]; h and w are
    # rounded to whole pixels (a small rectangle moves by up to ~25%).
    assert 0.015 <= min(fractions) and max(fractions) <= 0.35
    assert 0.2 <= min(aspects) and max(aspects) <= 5.0
    assert min(fractions) < 0.04 and max(fractions) > 0.28  # the whole range is used
    assert min(aspects) < 0.45 and max(aspects) > 2.2


def test_erase_boxes_follow_their_formula():
    """h = round(√(s r) H), w = round(√(s / r) W), from the same five uniform draws."""
    n, p = 5000, 0.3
    boxes = erase_boxes(n, torch.Generator().manual_seed(7), p=p, height=32, width=32)
    u = torch.rand((5, n), generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    u = u.numpy()
    s = ERASE_AREA[0] + (ERASE_AREA[1] - ERASE_AREA[0]) * u[1]
    r = np.exp(np.log(ERASE_ASPECT[0]) + np.log(ERASE_ASPECT[1] / ERASE_ASPECT[0]) * u[2])
    top, left, bottom, right = boxes.numpy().T
    on = u[0] < p
    np.testing.assert_array_equal(bottom > top, on)
    h, w = (bottom - top)[on], (right - left)[on]
    assert np.all(np.abs(h - np.clip(np.sqrt(s * r)[on] * 32, 1, 32)) <= 0.5 + 1e-9)
    assert np.all(np.abs(w - np.clip(np.sqrt(s / r)[on] * 32, 1, 32)) <= 0.5 + 1e-9)
    assert np.all((top >= 0) & (left >= 0) & (bottom <= 32) & (right <= 32))
    assert abs(on.mean() - p) < 0.02


# ---- validation split and early stopping -------------------------------------------------------

def test_validation_split_is_disjoint_stratified_and_seeded(embedded):
    data = hold_out_validation(embedded, 0.1, seed=3)
    rows = {bytes(img) for img in embedded.train_x}
    assert len(rows) == len(embedded.train_x)  # the images are distinct, so bytes identify them
    train = [bytes(img) for img in data.train_x]
    val = [bytes(img) for img in data.val_x]
    assert not set(train) & set(val)
    assert sorted(train + val) == sorted(rows)
    for cls in range(10):
        count = int((embedded.train_y == cls).sum())
        assert abs(int((data.val_y == cls).sum()) - 0.1 * count) <= 0.5 + 1e-9
    ident = data.identity
    assert ident.n_val == len(val)
    assert ident.n_train == len(train) == len(embedded.train_x) - len(val)
    assert ident.val_sha256 and ident.train_sha256 != embedded.identity.train_sha256
    assert "seed 3" in ident.val_split and "validation" in ident.train_split
    np.testing.assert_array_equal(hold_out_validation(embedded, 0.1, seed=3).val_x, data.val_x)
    assert not np.array_equal(hold_out_validation(embedded, 0.1, seed=4).val_x, data.val_x)
    with pytest.raises(ConfigError, match="holds out no image"):
        hold_out_validation(embedded, 1e-4, seed=0)


def test_early_stop_rule():
    assert not early_stop_due([], 1)
    assert not early_stop_due([3.0, 2.0, 1.0], 1)
    assert early_stop_due([3.0, 2.0, 2.0], 1)  # equal is no improvement
    assert early_stop_due([1.0, 2.0, 3.0], 2)
    assert not early_stop_due([1.0, 2.0, 3.0], 3)
    assert not early_stop_due([1.0, 2.0, 0.5, 0.7], 2)
    assert early_stop_due([1.0, math.nan], 1)


def early_config(cifar_dir, **changes):
    """Adam at a large lr: the validation loss soon rises, and patience 1 stops the run."""
    return tiny(cifar_dir, optimizer="adam", lrs=(0.05,), max_steps=40, eval_every=2,
                val_split=0.1, early_stop=1, checkpoint_seconds=1e-9, taps=(), **changes)


@pytest.fixture(scope="module")
def early_record(tmp_path_factory, cifar_dir):
    path = tmp_path_factory.mktemp("early") / "early.h5"
    results = record(early_config(cifar_dir), path)
    return path, results


def test_early_stopping_stops_the_run_and_says_why(early_record):
    path, results = early_record
    rec = landscape.open_record(path)
    info = rec.runs["vgg_lr0.05"]
    assert info.status == "complete" and info.stop_reason == "early_stop"
    assert results[0].outcome.stop_reason == "early_stop"
    assert info.steps_done < 40
    data = rec.load("vgg_lr0.05")
    assert len(data.steps.step) == info.steps_done == data.eval.step[-1]
    val = data.eval.val_loss
    assert np.all(np.isfinite(val)) and np.all(np.isfinite(data.eval.val_acc))
    assert val[-1] >= val[:-1].min() and early_stop_due(val.tolist(), 1)
    assert not early_stop_due(val[:-1].tolist(), 1)  # it stopped at the first chance
    assert rec.data["n_val"] + rec.data["n_train"] == 320 and 28 <= rec.data["n_val"] <= 36
    shown = CliRunner().invoke(main, ["info", str(path)])
    assert "complete (early stop)" in shown.output and "val acc" in shown.output


def test_an_early_stopped_run_resumes_exactly(tmp_path, cifar_dir, early_record):
    """Interrupted before its early stop, the resumed run stops at the same step."""
    reference = landscape.open_record(early_record[0])
    steps_done = reference.runs["vgg_lr0.05"].steps_done
    path = tmp_path / "r.h5"
    calls = iter(range(10 ** 6))
    record(early_config(cifar_dir), path, should_stop=lambda: next(calls) >= steps_done - 3)
    assert landscape.open_record(path).runs["vgg_lr0.05"].status == "interrupted"
    resume(path)
    resumed = landscape.open_record(path)
    assert resumed.runs["vgg_lr0.05"].stop_reason == "early_stop"
    assert_records_equal(resumed, reference)
    assert not checkpoint_path(path).exists()


def test_a_planned_end_is_recorded(tmp_path, cifar_dir):
    rec, run_id = one_step_record(tmp_path, tiny(cifar_dir))
    assert rec.runs[run_id].stop_reason == "planned"
    assert np.all(np.isnan(rec.load(run_id).eval.val_loss))


# ---- everything at once: the command line, and probing changes nothing -----------------------

def test_cli_options_reach_the_record(tmp_path, cifar_dir):
    out = tmp_path / "r.h5"
    result = CliRunner().invoke(main, [
        "record", "--model", "vgg_dropout", "--lrs", "0.05", "--optimizer", "sgd",
        "--momentum", "0.9", "--nesterov", "--schedule", "multistep", "--lr-milestones", "1,2",
        "--lr-gamma", "0.5", "--label-smoothing", "0.1", "--l1", "1e-5", "--l2", "1e-4",
        "--dropout", "0.3", "--erase-prob", "0.5", "--val-split", "0.1", "--early-stop", "5",
        "--width", "0.125", "--batch-size", "32", "--max-steps", "2", "--device", "cpu",
        "--data-dir", str(cifar_dir), "--no-verify", "-o", str(out)])
    assert result.exit_code == 0, result.output
    cfg = landscape.open_record(out).config
    expected = dict(optimizer="sgd", momentum=0.9, nesterov=True, schedule="multistep",
                    lr_milestones=[1, 2], lr_gamma=0.5, label_smoothing=0.1, l1=1e-5, l2=1e-4,
                    dropout=0.3, erase_prob=0.5, val_split=0.1, early_stop=5)
    assert {k: cfg[k] for k in expected} == expected
    assert RecordConfig.from_dict(cfg).lr_milestones == (1, 2)


def test_probing_leaves_training_with_every_option_bit_identical(tmp_path, cifar_dir):
    changes = dict(models=("vgg_dropout",), optimizer="sgd", momentum=0.9, max_steps=5,
                   schedule="cosine", lr_min=1e-3, label_smoothing=0.1, l1=1e-4, l2=1e-3,
                   erase_prob=0.5, crop_padding=2, flip=True, dropout=0.3)
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    plain, run_id = one_step_record(tmp_path / "a", tiny(cifar_dir, **changes))
    probed, _ = one_step_record(tmp_path / "b", tiny(cifar_dir, probe=ProbeConfig(
        every=2, count=2), **changes))
    a, b = plain.load(run_id), probed.load(run_id)
    for column in ("loss", "grad_norm", "grad_change", "update_norm", "lr"):
        np.testing.assert_array_equal(getattr(a.steps, column), getattr(b.steps, column))
    for name in TAPS:
        np.testing.assert_array_equal(plain.tap(run_id, name).weight_delta,
                                      probed.tap(run_id, name).weight_delta)
    # The probe's grid follows the schedule: [0.5, 4] × lr_t at each probed step.
    np.testing.assert_allclose(b.probe.eta, np.outer(b.steps.lr[b.probe.step], [0.5, 4.0]),
                               rtol=1e-15)
    assert np.all(b.probe.loss[:, 0] != b.steps.loss[b.probe.step])


def test_a_version_1_record_reads_and_resumes(tmp_path, cifar_dir):
    """Records from before the validation columns and stop_reason: read with NaN and a derived
    reason, and upgraded to the current schema by --resume."""
    import h5py

    from landscape.store import SCHEMA_VERSION

    path = tmp_path / "old.h5"
    calls = iter(range(10 ** 6))
    record(tiny(cifar_dir, max_steps=3, eval_every=1, models=("vgg", "vgg_bn")), path,
           should_stop=lambda: next(calls) >= 4)  # vgg complete, vgg_bn interrupted
    with h5py.File(path, "r+") as f:
        f.attrs["schema_version"] = 1
        for run in f["runs"].values():
            del run["stop_reason"], run["eval"]["val_loss"], run["eval"]["val_acc"]
            run["eval"].attrs["columns"] = [c for c in run["eval"].attrs["columns"]
                                            if not c.startswith("val_")]
    old = landscape.open_record(path)
    assert old.schema_version == 1
    assert old.runs["vgg_lr0.01"].stop_reason == "planned"
    assert old.runs["vgg_bn_lr0.01"].stop_reason is None
    assert np.all(np.isnan(old.load("vgg_lr0.01").eval.val_loss))
    resume(path)
    new = landscape.open_record(path)
    assert new.schema_version == SCHEMA_VERSION
    assert [r.stop_reason for r in new.runs.values()] == ["planned", "planned"]
    for run_id in new.runs:
        ev = new.load(run_id).eval
        np.testing.assert_array_equal(ev.step, [1, 2, 3])
        assert np.all(np.isnan(ev.val_loss)) and np.all(np.isnan(ev.val_acc))
