"""What a record stores beyond the losses: tapped parameters, probes, and how often it writes."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, Mapping

from landscape.config.hessian import HessianConfig
from landscape.config.field_types import check_field_types, check_finite
from landscape.errors import ConfigError, field_ref as ref

TAP_DTYPES = ("float32", "float16")
PROBE_SCALES = ("relative", "absolute")
PROBE_SPACINGS = ("linear", "log")
# "auto" resolves, per record, to "gradient" for plain SGD (no momentum, no weight decay: the
# update is −lr·g_t, the paper's setting) and to "update" for every other optimizer.
PROBE_DIRECTIONS = ("auto", "gradient", "update")
PROBE_DTYPES = ("float32", "float64")
# "final": the weight of each model's last linear layer (resolved per model by the sweep).
FINAL_TAP = "final"
DEFAULT_TAP = FINAL_TAP


@dataclass(frozen=True)
class ProbeConfig:
    """The paper's probe of the landscape at a training step (see docs/measurements.md).

    Every `every` steps (0: never) the loss and gradient are evaluated at `count` points on a
    line through w_t. With `direction` "gradient" (the paper's definition) the points are
    w_t − η g_t for step lengths η between `low` and `high`, multiples of the learning rate of
    the probed step when `scale` is "relative" (the paper's VGG range is [1/2, 4] × lr) and plain
    step lengths when it is "absolute"; with a schedule the relative grid follows lr_t. With
    `direction` "update" the points are w_t + c·d_t along the step the optimizer actually took,
    d_t = w_{t+1} − w_t, for multiples c between `low` and `high` (relative scale only); for
    plain SGD that is the same line and the same points. "auto" is resolved by the record's
    configuration (gradient for plain SGD, update otherwise). `dtype` "float64" recomputes the
    probe's losses and gradients in float64. `params` restricts the norms (not the move) to
    parameters whose names start with one of the given prefixes; empty means all parameters.
    """

    every: int = 0
    low: float = 0.5
    high: float = 4.0
    count: int = 8
    scale: Literal["relative", "absolute"] = "relative"
    spacing: Literal["linear", "log"] = "linear"
    params: tuple[str, ...] = ()
    direction: Literal["auto", "gradient", "update"] = "auto"
    dtype: Literal["float32", "float64"] = "float32"

    def __post_init__(self) -> None:
        check_field_types(self, "recording.probe.")

    def validate(self) -> None:
        if self.every < 0:
            raise ConfigError(f"{ref('recording.probe.every')} must be >= 0 (0 disables probes), "
                              f"got {self.every}")
        if self.scale not in PROBE_SCALES:
            raise ConfigError(f"unknown probe scale {self.scale!r}; valid: relative, absolute",
                              field="recording.probe.scale")
        if self.spacing not in PROBE_SPACINGS:
            raise ConfigError(f"unknown probe spacing {self.spacing!r}; valid: linear, log",
                              field="recording.probe.spacing")
        if self.count < 1:
            raise ConfigError(f"{ref('recording.probe.count')} must be at least 1, got "
                              f"{self.count}")
        if not (0 < self.low <= self.high) or not math.isfinite(self.high):
            raise ConfigError(
                f"probe range must satisfy 0 < low <= high, got [{self.low}, {self.high}]",
                field="recording.probe.low")
        if self.direction not in PROBE_DIRECTIONS:
            raise ConfigError(f"unknown probe direction {self.direction!r}; valid: "
                              f"{', '.join(PROBE_DIRECTIONS)}", field="recording.probe.direction")
        if self.dtype not in PROBE_DTYPES:
            raise ConfigError(f"unknown probe dtype {self.dtype!r}; valid: float32, float64",
                              field="recording.probe.dtype")
        if self.direction == "update" and self.scale != "relative":
            raise ConfigError(f"{ref('recording.probe.direction')} update probes at multiples "
                              f"of the update, so it needs {ref('recording.probe.scale')} "
                              f"relative")


@dataclass(frozen=True)
class RecordingConfig:
    """The measurements of every run and how often they reach the file."""

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
    # The model's weights (its whole state_dict: parameters and buffers) at the start of every
    # N-th step (0: never), at the steps listed, and/or after the last step of a finished run,
    # for loss surfaces and pruning afterwards (docs/schema.md, "weights").
    save_weights_every: int = 0
    save_weights_at: tuple[int, ...] = ()
    save_final_weights: bool = False
    flush_seconds: float = 10.0  # rows reach the file at least this often
    checkpoint_seconds: float = 60.0  # the run in progress is checkpointed at least this often
    # Top eigenvalues, trace and spectral density of the Hessian (landscape.probes.hessian).
    hessian: HessianConfig = field(default_factory=HessianConfig)
    # Keep the weights at every evaluation that improves the validation accuracy (needs a
    # validation split): the last of them are the best (`--step best` of surface and prune).
    keep_best: bool = False

    def __post_init__(self) -> None:
        check_field_types(self, "recording.")  # first: types, then the rest
        if isinstance(self.probe, Mapping):  # from JSON
            object.__setattr__(self, "probe", ProbeConfig(**self.probe))
        if isinstance(self.hessian, Mapping):  # from JSON
            object.__setattr__(self, "hessian", HessianConfig(**self.hessian))
        for name in ("taps", "ics_layers", "activation_layers", "save_weights_at"):
            object.__setattr__(self, name, tuple(getattr(self, name)))

    @property
    def saves_weights(self) -> bool:
        return bool(self.save_weights_every or self.save_weights_at or self.save_final_weights
                    or self.keep_best)

    def validate(self) -> None:
        if self.tap_every < 1:
            raise ConfigError(f"{ref('recording.tap_every')} must be at least 1, got "
                              f"{self.tap_every}")
        if self.tap_dtype not in TAP_DTYPES:
            raise ConfigError(f"unknown tap dtype {self.tap_dtype!r}; valid: float32, float16",
                              field="recording.tap_dtype")
        if len(set(self.taps)) != len(self.taps):
            raise ConfigError(f"a tap is listed twice: {', '.join(self.taps)}",
                              field="recording.taps")
        for name in ("flush_seconds", "checkpoint_seconds"):
            value = getattr(self, name)
            # nan and inf would switch flushing or checkpoints off without a word: a kill
            # would then lose every step.
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"{ref('recording.' + name)} must be positive and finite "
                                  f"(seconds), got {value}")
        self.probe.validate()
        if self.save_weights_every < 0:
            raise ConfigError(f"{ref('recording.save_weights_every')} must be >= 0 (0: never), "
                              f"got {self.save_weights_every}")
        if any(step < 0 for step in self.save_weights_at):
            raise ConfigError(f"{ref('recording.save_weights_at')} takes step numbers >= 0 "
                              f"(or final), got {', '.join(map(str, self.save_weights_at))}")
        if len(set(self.save_weights_at)) != len(self.save_weights_at):
            raise ConfigError(f"a step is listed twice in {ref('recording.save_weights_at')}: "
                              f"{', '.join(map(str, self.save_weights_at))}")
        self.hessian.validate()
        for kind, every, layers in (("ics", self.ics_every, self.ics_layers),
                                    ("activation", self.activation_every,
                                     self.activation_layers)):
            every_ref = ref(f"recording.{kind}_every")
            layers_ref = ref(f"recording.{kind}_layers")
            if every < 0:
                raise ConfigError(f"{every_ref} must be >= 0 (0 disables it), got {every}")
            if every and not layers:
                raise ConfigError(f"{every_ref} {every} needs at least one {layers_ref}")
            if len(set(layers)) != len(layers):
                raise ConfigError(f"a layer is listed twice in {layers_ref}: {layers}")
