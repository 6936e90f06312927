"""The validated configuration of a record: one frozen dataclass, checked once, written into the
record as JSON. The command line only parses text into it."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal, Mapping

from landscape.errors import ConfigError
from landscape.models import MODELS, check_model_name

Optimizer = Literal["sgd", "adam", "adamw", "rmsprop"]
OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
MOMENTUM_OPTIMIZERS = ("sgd", "rmsprop")  # the others have their own betas
Schedule = Literal["constant", "step", "multistep", "cosine", "cyclic"]
SCHEDULES = ("constant", "step", "multistep", "cosine", "cyclic")
IMAGE_CLASSIFICATION = "image-classification"  # the task of models that learn CIFAR-10
TAP_DTYPES = ("float32", "float16")
PROBE_SCALES = ("relative", "absolute")
PROBE_SPACINGS = ("linear", "log")
# "final": the weight of each model's last linear layer (resolved per model by the sweep).
FINAL_TAP = "final"
DEFAULT_TAP = FINAL_TAP


@dataclass(frozen=True)
class ProbeConfig:
    """The paper's probe along the gradient (see docs/measurements.md).

    Every `every` steps (0: never) the loss and gradient are evaluated at w_t − η g_t for `count`
    step lengths η between `low` and `high`, which are multiples of the learning rate of the
    probed step when `scale` is "relative" (the paper's VGG range is [1/2, 4] × lr) and plain
    step lengths when it is "absolute". With a learning-rate schedule the relative grid follows
    the schedule: at step t it is [low, high] × lr_t, the step the optimizer actually takes
    (recorded per probed step in `probe/eta`). `params` restricts the norms (not the move) to
    parameters whose names start with one of the given prefixes; empty means all parameters.
    """

    every: int = 0
    low: float = 0.5
    high: float = 4.0
    count: int = 8
    scale: Literal["relative", "absolute"] = "relative"
    spacing: Literal["linear", "log"] = "linear"
    params: tuple[str, ...] = ()

    def validate(self) -> None:
        if self.every < 0:
            raise ConfigError(f"--probe-every must be >= 0 (0 disables probes), got {self.every}")
        if self.scale not in PROBE_SCALES:
            raise ConfigError(f"unknown probe scale {self.scale!r}; valid: relative, absolute")
        if self.spacing not in PROBE_SPACINGS:
            raise ConfigError(f"unknown probe spacing {self.spacing!r}; valid: linear, log")
        if self.count < 1:
            raise ConfigError(f"--probe-count must be at least 1, got {self.count}")
        if not (0 < self.low <= self.high) or not math.isfinite(self.high):
            raise ConfigError(
                f"probe range must satisfy 0 < low <= high, got [{self.low}, {self.high}]"
            )


@dataclass(frozen=True)
class RecordConfig:
    """Everything that determines a record's contents (and nothing that does not)."""

    models: tuple[str, ...] = ("vgg", "vgg_bn")
    lrs: tuple[float, ...] = (1e-3, 2e-3, 5e-4, 1e-4)
    optimizer: Optimizer = "adam"
    momentum: float = 0.0  # sgd and rmsprop only
    nesterov: bool = False  # sgd with momentum only
    weight_decay: float = 0.0  # as the optimizer implements it (decoupled for adamw)
    # Learning-rate schedule, applied per step (landscape.schedules.learning_rate).
    schedule: Schedule = "constant"
    lr_min: float = 0.0  # cosine: the value annealed to; cyclic: the bottom of the triangle
    lr_step_epochs: int | None = None  # step: multiply by lr_gamma every this many epochs
    lr_gamma: float = 0.1  # step, multistep: the factor
    lr_milestones: tuple[int, ...] = ()  # multistep: epochs at which to multiply by lr_gamma
    cycle_steps: int | None = None  # cyclic: steps from the bottom to the top (half a period)
    # Regularization. The training objective is
    #   data loss (with label smoothing) + l1·Σ|w| + (l2/2)·Σw²  over all parameters;
    # it is what `steps/loss` records and what the probes measure.
    label_smoothing: float = 0.0
    l1: float = 0.0
    l2: float = 0.0
    dropout: float | None = None  # None: the model's own default
    batch_size: int = 128
    epochs: int | None = 20  # None: as many as --max-steps needs
    max_steps: int | None = None  # stop each run after this many steps (None: run all epochs)
    eval_every: int | None = None  # evaluate every N steps (None: at the end of every epoch)
    seed: int = 0
    device: str = "cpu"  # resolved device ("cpu", "cuda", "cuda:1", ...)
    allow_tf32: bool = False  # TF32 matmuls/convs on CUDA: faster, ~1e-3 relative error
    # Data: None means the embedded subset; otherwise a folder with cifar-10-batches-py.
    data_dir: str | None = None
    download: bool = False
    verify_md5: bool = True
    subset: int | None = None  # use the first N training images
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    crop_padding: int = 0
    flip: bool = False
    erase_prob: float = 0.0  # random erasing: probability per image
    # Validation split held out of the training images (stratified, seeded by `seed`), and
    # early stopping on its loss after this many evaluations without improvement.
    val_split: float | None = None
    early_stop: int | None = None
    width: float = 1.0  # channel-width multiplier of the models (1: as published)
    # Recording.
    taps: tuple[str, ...] = (DEFAULT_TAP,)
    tap_every: int = 1
    tap_dtype: Literal["float32", "float16"] = "float32"
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    # Internal covariate shift (Definition 2.1) of these layers every N steps (0: never).
    ics_every: int = 0
    ics_layers: tuple[str, ...] = ()
    # Per-channel mean/variance of these layers' outputs every N steps (0: never).
    activation_every: int = 0
    activation_layers: tuple[str, ...] = ()
    flush_seconds: float = 10.0  # rows reach the file at least this often
    checkpoint_seconds: float = 60.0  # the run in progress is checkpointed at least this often

    def __post_init__(self) -> None:
        if isinstance(self.probe, Mapping):  # from JSON
            object.__setattr__(self, "probe", ProbeConfig(**self.probe))
        for name in ("models", "lrs", "taps", "mean", "std", "ics_layers", "activation_layers",
                     "lr_milestones"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        self.validate()

    def validate(self) -> None:
        if not self.models:
            raise ConfigError("no model given")
        for name in self.models:
            check_model_name(name)
        if len(set(self.models)) != len(self.models):
            raise ConfigError(f"a model is listed twice: {', '.join(self.models)}")
        if not self.lrs:
            raise ConfigError("no learning rate given")
        for lr in self.lrs:
            if not (math.isfinite(lr) and lr > 0):
                raise ConfigError(f"learning rates must be positive numbers, got {lr}")
        if len(set(self.lrs)) != len(self.lrs):
            raise ConfigError(f"a learning rate is listed twice: {self.lrs}")
        self._validate_optimizer()
        self._validate_schedule()
        self._validate_regularization()
        if self.batch_size < 1:
            raise ConfigError(f"batch size must be positive, got {self.batch_size}")
        if self.epochs is None and self.max_steps is None:
            raise ConfigError("give --epochs or --max-steps (or both)")
        if self.epochs is not None and self.epochs < 1:
            raise ConfigError(f"--epochs must be at least 1, got {self.epochs}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError(f"--max-steps must be at least 1, got {self.max_steps}")
        if self.eval_every is not None and self.eval_every < 1:
            raise ConfigError(f"--eval-every must be at least 1, got {self.eval_every}")
        if self.subset is not None and self.subset < 1:
            raise ConfigError(f"--subset must be a positive number of images, got {self.subset}")
        if self.width <= 0:
            raise ConfigError(f"--width must be positive, got {self.width}")
        if self.tap_every < 1:
            raise ConfigError(f"--tap-every must be at least 1, got {self.tap_every}")
        if self.tap_dtype not in TAP_DTYPES:
            raise ConfigError(f"unknown tap dtype {self.tap_dtype!r}; valid: float32, float16")
        if len(set(self.taps)) != len(self.taps):
            raise ConfigError(f"a tap is listed twice: {', '.join(self.taps)}")
        if self.crop_padding < 0:
            raise ConfigError(f"crop padding must be >= 0, got {self.crop_padding}")
        if not 0 <= self.erase_prob <= 1:
            raise ConfigError(f"--erase-prob must be in [0, 1], got {self.erase_prob}")
        if self.val_split is not None and not 0 < self.val_split < 1:
            raise ConfigError(f"--val-split must be a fraction in (0, 1), got {self.val_split}")
        if self.early_stop is not None:
            if self.early_stop < 1:
                raise ConfigError(
                    f"--early-stop must be at least 1 evaluation, got {self.early_stop}")
            if self.val_split is None:
                raise ConfigError("--early-stop needs --val-split (it watches the loss on the "
                                  "validation images)")
        self._check_image_only()
        if self.download and self.data_dir is None:
            raise ConfigError("--download needs --data-dir (where to put CIFAR-10)")
        if self.flush_seconds <= 0:
            raise ConfigError(f"--flush-seconds must be positive, got {self.flush_seconds}")
        if self.checkpoint_seconds <= 0:
            raise ConfigError(
                f"--checkpoint-seconds must be positive, got {self.checkpoint_seconds}")
        self.probe.validate()
        for option, every, layers in (("--ics", self.ics_every, self.ics_layers),
                                      ("--activations", self.activation_every,
                                       self.activation_layers)):
            if every < 0:
                raise ConfigError(f"{option}-every must be >= 0 (0 disables it), got {every}")
            if every and not layers:
                raise ConfigError(f"{option}-every {every} needs at least one {option}-layer")
            if len(set(layers)) != len(layers):
                raise ConfigError(f"a layer is listed twice in {option}-layer: {layers}")

    def _validate_optimizer(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"unknown optimizer {self.optimizer!r}; valid: "
                              f"{', '.join(OPTIMIZERS)}")
        if self.momentum and self.optimizer not in MOMENTUM_OPTIMIZERS:
            raise ConfigError(f"--momentum applies to sgd only (or rmsprop); {self.optimizer} "
                              f"has its own betas")
        if not 0 <= self.momentum < 1:
            raise ConfigError(f"momentum must be in [0, 1), got {self.momentum}")
        if self.nesterov and not (self.optimizer == "sgd" and self.momentum > 0):
            raise ConfigError("--nesterov needs --optimizer sgd with --momentum > 0")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ConfigError(f"weight decay must be >= 0, got {self.weight_decay}")

    def _validate_schedule(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"unknown schedule {self.schedule!r}; valid: "
                              f"{', '.join(SCHEDULES)}")
        # An option of another schedule would be ignored: refuse it instead.
        uses = {
            "--lr-min": (self.lr_min != 0.0, ("cosine", "cyclic")),
            "--lr-gamma": (self.lr_gamma != 0.1, ("step", "multistep")),
            "--lr-step-epochs": (self.lr_step_epochs is not None, ("step",)),
            "--lr-milestones": (bool(self.lr_milestones), ("multistep",)),
            "--cycle-steps": (self.cycle_steps is not None, ("cyclic",)),
        }
        for option, (given, schedules) in uses.items():
            if given and self.schedule not in schedules:
                raise ConfigError(f"{option} applies to --schedule {' or '.join(schedules)}, "
                                  f"not {self.schedule}")
        if not (math.isfinite(self.lr_min) and self.lr_min >= 0):
            raise ConfigError(f"--lr-min must be >= 0, got {self.lr_min}")
        if self.schedule in ("cosine", "cyclic") and self.lr_min >= min(self.lrs):
            raise ConfigError(f"--lr-min {self.lr_min:g} must be below every learning rate "
                              f"(lowest: {min(self.lrs):g})")
        if not 0 < self.lr_gamma <= 1:
            raise ConfigError(f"--lr-gamma must be in (0, 1], got {self.lr_gamma}")
        if self.schedule == "step":
            if self.lr_step_epochs is None:
                raise ConfigError("--schedule step needs --lr-step-epochs N (multiply the "
                                  "learning rate by --lr-gamma every N epochs)")
            if self.lr_step_epochs < 1:
                raise ConfigError(
                    f"--lr-step-epochs must be at least 1, got {self.lr_step_epochs}")
        if self.schedule == "multistep":
            if not self.lr_milestones:
                raise ConfigError("--schedule multistep needs --lr-milestones, e.g. 100,150 "
                                  "(epochs at which the learning rate is multiplied by "
                                  "--lr-gamma)")
            ms = self.lr_milestones
            if ms[0] < 1 or any(b <= a for a, b in zip(ms, ms[1:])):
                raise ConfigError(f"--lr-milestones must be increasing epochs >= 1, got "
                                  f"{','.join(str(m) for m in ms)}")
        if self.schedule == "cyclic":
            if self.cycle_steps is None:
                raise ConfigError("--schedule cyclic needs --cycle-steps N (steps from "
                                  "--lr-min up to the learning rate; a cycle is 2N steps)")
            if self.cycle_steps < 1:
                raise ConfigError(f"--cycle-steps must be at least 1, got {self.cycle_steps}")

    def _validate_regularization(self) -> None:
        if not 0 <= self.label_smoothing < 1:
            raise ConfigError(
                f"--label-smoothing must be in [0, 1), got {self.label_smoothing}")
        for option, value in (("--l1", self.l1), ("--l2", self.l2)):
            if not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"{option} must be >= 0, got {value}")
        if self.dropout is not None and not 0 <= self.dropout < 1:
            raise ConfigError(f"--dropout must be in [0, 1), got {self.dropout}")

    def _check_image_only(self) -> None:
        """Options that exist for image classification only (labels, images, a split)."""
        other = [m for m in self.models if MODELS[m].task != IMAGE_CLASSIFICATION]
        if not other:
            return
        for option, given in (("--label-smoothing", self.label_smoothing > 0),
                              ("--erase-prob", self.erase_prob > 0),
                              ("--val-split", self.val_split is not None)):
            if given:
                raise ConfigError(f"{option} applies to image classification; model "
                                  f"{other[0]!r} learns {MODELS[other[0]].task}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "RecordConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown configuration keys: {', '.join(unknown)}")
        return cls(**values)

    def with_changes(self, **changes: Any) -> "RecordConfig":
        return replace(self, **changes)


def total_steps(config: RecordConfig, steps_per_epoch: int) -> int:
    """Steps per run: the epochs asked for, cut at --max-steps."""
    bounds = [b for b in (config.max_steps,
                          None if config.epochs is None else config.epochs * steps_per_epoch)
              if b is not None]
    return min(bounds)


# Presets: named starting points; explicit options override them and the record stores the
# resolved values. `landscape presets` prints them.
PAPER_ICS_LAYERS = ("features.stage2.conv1", "features.stage4.conv1", "features.stage5.conv2")
PAPER_ACTIVATION_LAYERS = ("features.stage3.norm1", "classifier.norm2")
PRESETS: dict[str, dict[str, Any]] = {
    "course": {
        "models": ("vgg", "vgg_bn"), "optimizer": "adam", "lrs": (1e-3, 2e-3, 5e-4, 1e-4),
        "momentum": 0.0, "weight_decay": 0.0, "batch_size": 128, "epochs": 20,
        "max_steps": None, "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5), "crop_padding": 0,
        "flip": False, "taps": (DEFAULT_TAP,), "probe": ProbeConfig(every=100),
    },
    "paper": {
        "models": ("vgg", "vgg_bn"), "optimizer": "sgd", "lrs": (0.1,), "momentum": 0.0,
        "weight_decay": 0.0, "batch_size": 128, "epochs": None, "max_steps": 15_000,
        "crop_padding": 0, "flip": False, "taps": (DEFAULT_TAP,),
        "probe": ProbeConfig(every=1, low=0.5, high=4.0, count=8),
        "ics_every": 100, "ics_layers": PAPER_ICS_LAYERS,
        "activation_every": 10, "activation_layers": PAPER_ACTIVATION_LAYERS,
    },
    "paper-dln": {
        "models": ("dln", "dln_bn"), "optimizer": "sgd", "lrs": (1e-6,), "momentum": 0.0,
        "weight_decay": 0.0, "batch_size": 1000, "epochs": None, "max_steps": 10_000,
        "eval_every": 100, "taps": (FINAL_TAP,),
        "probe": ProbeConfig(every=10, low=0.01, high=30.0, count=8, spacing="log"),
        "ics_every": 100, "ics_layers": ("layers.fc5", "layers.fc13", "layers.fc20"),
    },
}


def preset(name: str) -> dict[str, Any]:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; valid presets: {', '.join(PRESETS)}")
    return dict(PRESETS[name])


def parse_float_list(text: str, *, option: str) -> tuple[float, ...]:
    """'1e-3,2e-3' -> (0.001, 0.002), with one clear error for anything malformed."""
    items = [item.strip() for item in text.split(",")]
    if not text.strip() or any(item == "" for item in items):
        raise ConfigError(f"{option}: empty entry in {text!r}; expected e.g. 1e-3,2e-3")
    values = []
    for item in items:
        try:
            values.append(float(item))
        except ValueError:
            raise ConfigError(f"{option}: {item!r} is not a number (in {text!r})") from None
    return tuple(values)


def parse_int_list(text: str, *, option: str) -> tuple[int, ...]:
    """'100,150' -> (100, 150), with one clear error for anything malformed."""
    items = [item.strip() for item in text.split(",")]
    if not text.strip() or any(item == "" for item in items):
        raise ConfigError(f"{option}: empty entry in {text!r}; expected e.g. 100,150")
    values = []
    for item in items:
        try:
            values.append(int(item))
        except ValueError:
            raise ConfigError(f"{option}: {item!r} is not a whole number (in {text!r})") \
                from None
    return tuple(values)


def parse_name_list(texts: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Repeated and comma-separated names ('vgg,vgg_bn' or --model vgg --model vgg_bn)."""
    names = []
    for text in texts:
        for item in text.split(","):
            item = item.strip()
            if not item:
                raise ConfigError(f"empty name in {text!r}")
            names.append(item)
    return tuple(names)


def run_id(model: str, lr: float) -> str:
    """The HDF5 group name of the run of `model` at `lr`, e.g. 'vgg_bn_lr0.001'."""
    return f"{model}_lr{lr:g}"
