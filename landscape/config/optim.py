"""How the models are trained: learning rates, optimizer, schedule, objective and run length."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from landscape.config.field_types import check_field_types, check_finite
from landscape.errors import ConfigError, field_ref as ref

Optimizer = Literal["sgd", "adam", "adamw", "rmsprop", "slbi", "slbi_adam"]
OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "slbi", "slbi_adam")
MOMENTUM_OPTIMIZERS = ("sgd", "rmsprop", "slbi")  # the others have their own betas
SLBI_OPTIMIZERS = ("slbi", "slbi_adam")  # DessiLBI and its Adam variant (landscape.optim)
Schedule = Literal["constant", "step", "multistep", "cosine", "cyclic"]
SCHEDULES = ("constant", "step", "multistep", "cosine", "cyclic")
BETAS_OPTIMIZERS = ("adam", "adamw")  # torch's optimizers that take betas from the config
# The training loss of image classification (landscape.training.losses): cross-entropy, torch's nll on
# log-softmax (the same number), or the mean squared error of the logits to one-hot targets.
LOSSES = ("cross_entropy", "nll", "mse")  # as training/losses.py (config imports no torch)
EARLY_STOP_METRICS = ("loss", "acc")  # of the validation split


@dataclass(frozen=True)
class OptimConfig:
    """The optimization of every run; one run per learning rate in `lrs`."""

    lrs: tuple[float, ...] = (1e-3, 2e-3, 5e-4, 1e-4)
    optimizer: Optimizer = "adam"
    momentum: float = 0.0  # sgd and rmsprop only
    nesterov: bool = False  # sgd with momentum only
    weight_decay: float = 0.0  # as the optimizer implements it (decoupled for adamw)
    # Learning-rate schedule, applied per step (landscape.training.schedules.learning_rate reads these).
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
    batch_size: int = 128
    epochs: int | None = 20  # None: as many as max_steps needs
    max_steps: int | None = None  # stop each run after this many steps (None: run all epochs)
    eval_every: int | None = None  # evaluate every N steps (None: at the end of every epoch)
    # Early stopping on the validation loss after this many evaluations without improvement.
    early_stop: int | None = None
    # DessiLBI (slbi, slbi_adam; see docs/dessilbi.md): the damping κ, the coupling μ of W to
    # its sparse Γ, and the layers given a Γ (empty: every conv and linear weight).
    slbi_kappa: float = 1.0
    slbi_mu: float = 100.0
    slbi_layers: tuple[str, ...] = ()
    # Adam/AdamW's (beta1, beta2); None: torch's (0.9, 0.999).
    betas: tuple[float, float] | None = None
    loss: str = "cross_entropy"  # one of LOSSES (image classification)
    # What early stopping watches on the validation split ("loss": lower is better; "acc":
    # higher), and the least change that counts as an improvement.
    early_stop_metric: str = "loss"
    early_stop_min_delta: float = 0.0

    def __post_init__(self) -> None:
        check_field_types(self, "optim.")  # first: types, then the rest
        for name in ("lrs", "lr_milestones", "slbi_layers"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if self.betas is not None:
            object.__setattr__(self, "betas", tuple(self.betas))

    def validate(self) -> None:
        if not self.lrs:
            raise ConfigError("no learning rate given", field="optim.lrs")
        for lr in self.lrs:
            if not (math.isfinite(lr) and lr > 0):
                raise ConfigError(f"learning rates must be positive numbers, got {lr}",
                                  field="optim.lrs")
        if len(set(self.lrs)) != len(self.lrs):
            raise ConfigError(f"a learning rate is listed twice: {self.lrs}", field="optim.lrs")
        self._validate_optimizer()
        self._validate_slbi()
        self._validate_schedule()
        self._validate_objective()
        self._validate_length()

    def _validate_optimizer(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"unknown optimizer {self.optimizer!r}; valid: "
                              f"{', '.join(OPTIMIZERS)}", field="optim.optimizer")
        if self.momentum and self.optimizer not in MOMENTUM_OPTIMIZERS:
            raise ConfigError(f"{ref('optim.momentum')} applies to sgd, rmsprop and slbi only; "
                              f"{self.optimizer} has its own betas")
        if not 0 <= self.momentum < 1:
            raise ConfigError(f"momentum must be in [0, 1), got {self.momentum}",
                              field="optim.momentum")
        if self.nesterov and not (self.optimizer == "sgd" and self.momentum > 0):
            raise ConfigError(f"{ref('optim.nesterov')} needs {ref('optim.optimizer')} sgd with "
                              f"{ref('optim.momentum')} > 0")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ConfigError(f"weight decay must be >= 0, got {self.weight_decay}",
                              field="optim.weight_decay")
        if self.betas is not None:
            if self.optimizer not in BETAS_OPTIMIZERS:
                raise ConfigError(f"{ref('optim.betas')} applies to adam and adamw, not "
                                  f"{self.optimizer}")
            if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
                raise ConfigError(f"{ref('optim.betas')} takes two numbers in [0, 1), e.g. "
                                  f"0.9,0.999; got {','.join(map(str, self.betas))}")

    def _validate_slbi(self) -> None:
        """κ and μ positive; the options refused for other optimizers, which would ignore
        them. The layers are checked against each model when the runs are planned."""
        given = [name for name, value, default in (
            ("slbi_kappa", self.slbi_kappa, 1.0), ("slbi_mu", self.slbi_mu, 100.0),
            ("slbi_layers", self.slbi_layers, ())) if value != default]
        if given and self.optimizer not in SLBI_OPTIMIZERS:
            raise ConfigError(f"{ref('optim.' + given[0])} applies to {ref('optim.optimizer')} "
                              f"slbi or slbi_adam, not {self.optimizer}")
        for name in ("slbi_kappa", "slbi_mu"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ConfigError(f"{ref('optim.' + name)} must be a positive number, got "
                                  f"{value}")

    def _validate_schedule(self) -> None:
        schedule = ref("optim.schedule")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"unknown schedule {self.schedule!r}; valid: "
                              f"{', '.join(SCHEDULES)}", field="optim.schedule")
        # An option of another schedule would be ignored: refuse it instead.
        uses = {
            "lr_min": (self.lr_min != 0.0, ("cosine", "cyclic")),
            "lr_gamma": (self.lr_gamma != 0.1, ("step", "multistep")),
            "lr_step_epochs": (self.lr_step_epochs is not None, ("step",)),
            "lr_milestones": (bool(self.lr_milestones), ("multistep",)),
            "cycle_steps": (self.cycle_steps is not None, ("cyclic",)),
        }
        for name, (given, schedules) in uses.items():
            if given and self.schedule not in schedules:
                raise ConfigError(f"{ref('optim.' + name)} applies to {schedule} "
                                  f"{' or '.join(schedules)}, not {self.schedule}")
        lr_min, lr_gamma = ref("optim.lr_min"), ref("optim.lr_gamma")
        if not (math.isfinite(self.lr_min) and self.lr_min >= 0):
            raise ConfigError(f"{lr_min} must be >= 0, got {self.lr_min}")
        if self.schedule in ("cosine", "cyclic") and self.lr_min >= min(self.lrs):
            raise ConfigError(f"{lr_min} {self.lr_min:g} must be below every learning rate "
                              f"(lowest: {min(self.lrs):g})")
        if not 0 < self.lr_gamma <= 1:
            raise ConfigError(f"{lr_gamma} must be in (0, 1], got {self.lr_gamma}")
        if self.schedule == "step":
            step_epochs = ref("optim.lr_step_epochs")
            if self.lr_step_epochs is None:
                raise ConfigError(f"{schedule} step needs {step_epochs} N (multiply the "
                                  f"learning rate by {lr_gamma} every N epochs)",
                                  field="optim.lr_step_epochs")
            if self.lr_step_epochs < 1:
                raise ConfigError(f"{step_epochs} must be at least 1, got {self.lr_step_epochs}")
        if self.schedule == "multistep":
            milestones = ref("optim.lr_milestones")
            if not self.lr_milestones:
                raise ConfigError(f"{schedule} multistep needs {milestones}, e.g. 100,150 "
                                  f"(epochs at which the learning rate is multiplied by "
                                  f"{lr_gamma})", field="optim.lr_milestones")
            ms = self.lr_milestones
            if ms[0] < 1 or any(b <= a for a, b in zip(ms, ms[1:])):
                raise ConfigError(f"{milestones} must be increasing epochs >= 1, got "
                                  f"{','.join(str(m) for m in ms)}")
        if self.schedule == "cyclic":
            cycle = ref("optim.cycle_steps")
            if self.cycle_steps is None:
                raise ConfigError(f"{schedule} cyclic needs {cycle} N (steps from {lr_min} up "
                                  f"to the learning rate; a cycle is 2N steps)",
                                  field="optim.cycle_steps")
            if self.cycle_steps < 1:
                raise ConfigError(f"{cycle} must be at least 1, got {self.cycle_steps}")

    def _validate_objective(self) -> None:
        if not 0 <= self.label_smoothing < 1:
            raise ConfigError(f"{ref('optim.label_smoothing')} must be in [0, 1), got "
                              f"{self.label_smoothing}")
        if self.loss not in LOSSES:
            raise ConfigError(f"unknown {ref('optim.loss')} {self.loss!r}; valid: "
                              f"{', '.join(LOSSES)}")
        if self.label_smoothing and self.loss != "cross_entropy":
            raise ConfigError(f"{ref('optim.label_smoothing')} applies to {ref('optim.loss')} "
                              f"cross_entropy, not {self.loss}")
        for name, value in (("l1", self.l1), ("l2", self.l2)):
            if not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"{ref('optim.' + name)} must be >= 0, got {value}")

    def _validate_length(self) -> None:
        if self.batch_size < 1:
            raise ConfigError(f"batch size must be positive, got {self.batch_size}",
                              field="optim.batch_size")
        if self.epochs is None and self.max_steps is None:
            raise ConfigError(f"give {ref('optim.epochs')} or {ref('optim.max_steps')} "
                              f"(or both)")
        for name in ("epochs", "max_steps", "eval_every"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"{ref('optim.' + name)} must be at least 1, got {value}")
        if self.early_stop is not None and self.early_stop < 1:
            raise ConfigError(f"{ref('optim.early_stop')} must be at least 1 evaluation, got "
                              f"{self.early_stop}")
        if self.early_stop_metric not in EARLY_STOP_METRICS:
            raise ConfigError(f"unknown {ref('optim.early_stop_metric')} "
                              f"{self.early_stop_metric!r}; valid: loss, acc")
        if not (math.isfinite(self.early_stop_min_delta) and self.early_stop_min_delta >= 0):
            raise ConfigError(f"{ref('optim.early_stop_min_delta')} must be >= 0, got "
                              f"{self.early_stop_min_delta}")
        if self.early_stop is None and (self.early_stop_metric != "loss"
                                        or self.early_stop_min_delta):
            name = "early_stop_metric" if self.early_stop_metric != "loss" else \
                "early_stop_min_delta"
            raise ConfigError(f"{ref('optim.' + name)} needs {ref('optim.early_stop')} N")

    def total_steps(self, steps_per_epoch: int) -> int:
        """Steps per run: the epochs asked for, cut at max_steps."""
        bounds = [b for b in (self.max_steps,
                              None if self.epochs is None else self.epochs * steps_per_epoch)
                  if b is not None]
        return min(bounds)
