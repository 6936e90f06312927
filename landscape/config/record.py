"""The configuration of a record: its parts, the checks across them, and the flat dict the
record stores as JSON (`to_dict`, `from_dict`)."""

from __future__ import annotations

import re
import typing
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Mapping

from landscape.config.axes import Axis, format_value, levels, levels_text, normalize_axes, to_json
from landscape.config.field_types import check_finite, conform
from landscape.config.hessian import BEFORE_WARM_STARTS
from landscape.config.levels import MAX_RUN_ID, MAX_RUNS, check_axes, check_run_count, run_id
from landscape.config.model_data import IMAGE_CLASSIFICATION, DataConfig, ModelConfig
from landscape.config.optim import OptimConfig
from landscape.config.recording import ProbeConfig, RecordingConfig
from landscape.errors import ConfigError, RecordError, field_ref as ref
from landscape.models import MODELS, model_task

# The record stores one flat dict with the keys in this order (the order of the flat
# configuration the first records were written with); each key belongs to the part named
# here, or to RecordConfig itself (None). Changing the order changes the records' bytes.
_FLAT_KEYS: dict[str, str | None] = {
    "models": "model",
    "lrs": "optim",
    **dict.fromkeys(("optimizer", "momentum", "nesterov", "weight_decay", "schedule", "lr_min",
                     "lr_step_epochs", "lr_gamma", "lr_milestones", "cycle_steps",
                     "label_smoothing", "l1", "l2"), "optim"),
    "dropout": "model",
    **dict.fromkeys(("batch_size", "epochs", "max_steps", "eval_every"), "optim"),
    **dict.fromkeys(("seeds", "device", "allow_tf32"), None),
    **dict.fromkeys(("data_dir", "download", "verify_md5", "subset", "mean", "std",
                     "crop_padding", "flip", "erase_prob", "val_split"), "data"),
    "early_stop": "optim",
    "width": "model",
    **dict.fromkeys(("taps", "tap_every", "tap_dtype", "probe", "ics_every", "ics_layers",
                     "activation_every", "activation_layers", "save_weights_every",
                     "save_weights_at", "save_final_weights", "flush_seconds",
                     "checkpoint_seconds"), "recording"),
    "hessian": "recording",
    **dict.fromkeys(("slbi_kappa", "slbi_mu", "slbi_layers"), "optim"),
    "dataset": "data",
    "precision": None,  # added after the others: older records lack it (float32)
    # Issue 20's options, after the others (older records lack them: their defaults are the
    # behaviour those records were measured with).
    **dict.fromkeys(("norm_placement", "activation"), "model"),
    **dict.fromkeys(("betas", "loss", "early_stop_metric", "early_stop_min_delta"), "optim"),
    **dict.fromkeys(("autoaugment", "rotation", "color_jitter", "erase_scale"), "data"),
    "keep_best": "recording",
    "init_from": "model",
    "axes": None,  # the varied fields (config/axes.py); older records have none
    # Issue 28's: any model's normalization and builder options, and the input normalization
    # from the training split (older records lack them: each model's own, "given").
    **dict.fromkeys(("norm", "model_options"), "model"),
    "normalize_from": "data",
    # Issue 30's, after the others (older records lack them: auto, not reproducible, torch's
    # threads).
    **dict.fromkeys(("memory_format", "reproducible", "threads"), None),
}
# Fields whose value decides what probe direction "auto" resolves to (see plain_sgd).
_PLAIN_SGD_FIELDS = ("optimizer", "momentum", "weight_decay")
# "auto": measured per machine (landscape.training.tuning, which config does not import).
MEMORY_FORMATS = ("auto", "channels_last", "contiguous")
MAX_THREADS = 1024  # torch would try to start them all
# The arithmetic of training (landscape.training.precision): tf32 is allow_tf32 by another name.
PRECISIONS = ("float32", "tf32", "bf16")
# The largest seed: every generator the runs seed takes it (numpy's legacy seeds stop at
# 2**32 - 1, torch's and HDF5's int64 attributes at 2**63 - 1), and it is far more seeds than a
# study needs (docs/errors.md).
MAX_SEED = 2**32 - 1
# What landscape.sweep.resolve_device gives (the record stores the resolved device).
_DEVICE = re.compile(r"cpu|cuda(:[0-9]+)?")
_PARTS = {"model": ModelConfig, "data": DataConfig, "optim": OptimConfig,
          "recording": RecordingConfig}


@dataclass(frozen=True, init=False)
class RecordConfig:
    """Everything that determines a record's contents (and nothing that does not), validated
    once on construction.

    Build it from its parts or from flat keywords, or both (flat keywords change the part they
    belong to): `RecordConfig(models=("vgg",), lrs=(0.1,), max_steps=100)`. The flat names also
    read through (`config.lrs` is `config.optim.lrs`) for scripts written against the flat
    configuration; the library itself reads the parts.
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    recording: RecordingConfig = field(default_factory=RecordingConfig)
    # One run per (model, lr, seed); each seed sets the initialization, data order and
    # augmentation of its runs. The first seed also draws the validation split (and the deep
    # linear network's data), which all runs share.
    seeds: tuple[int, ...] = (0,)
    device: str = "cpu"  # resolved device ("cpu", "cuda", "cuda:1", ...)
    allow_tf32: bool = False  # TF32 matmuls/convs on CUDA: faster, ~1e-3 relative error
    precision: str = "float32"  # float32, tf32 (= allow_tf32) or bf16 (autocast forward)
    # Fields varied over several values (config/axes.py): the runs are the product of their
    # levels with the models, learning rates and seeds.
    axes: tuple[Axis, ...] = ()
    # The memory format of image models' tensors: "auto" (the faster on this machine, measured:
    # landscape.training.tuning), or pinned: channels_last, contiguous (every preset pins one).
    memory_format: str = "auto"
    # Pin what makes numbers differ between runs on one machine type (docs/measurements.md §6):
    # the memory format (channels_last unless pinned), torch's CPU threads (`threads`, this
    # machine's count unless given), deterministic kernels (cuDNN without its timed autotuner).
    reproducible: bool = False
    threads: int | None = None  # torch's CPU threads in every run (None: torch's default)

    def __init__(self, *, model: ModelConfig | None = None, data: DataConfig | None = None,
                 optim: OptimConfig | None = None, recording: RecordingConfig | None = None,
                 seeds: tuple[int, ...] | None = None, seed: int | None = None,
                 device: str = "cpu", allow_tf32: bool = False, precision: str = "float32",
                 axes: Any = None, memory_format: str = "auto", reproducible: bool = False,
                 threads: int | None = None, **flat: Any) -> None:
        given = {"model": model, "data": data, "optim": optim, "recording": recording}
        for name, part in given.items():
            if part is not None and not isinstance(part, _PARTS[name]):
                raise ConfigError(f"{name} must be a {_PARTS[name].__name__} (or give its fields "
                                  f"as keywords: RecordConfig(lrs=(0.1,), ...)), got "
                                  f"{type(part).__name__}", field=name)
        changes: dict[str, dict[str, Any]] = {name: {} for name in _PARTS}
        for key, value in flat.items():
            part = _FLAT_KEYS.get(key)
            if part is None:
                raise TypeError(f"RecordConfig got an unexpected keyword argument {key!r}")
            changes[part][key] = value
        for name, cls in _PARTS.items():
            base = given[name] if given[name] is not None else cls()
            values = {f.name: getattr(base, f.name) for f in fields(cls)}
            object.__setattr__(self, name, cls(**{**values, **changes[name]}))
        if seed is not None and seeds is not None:
            raise ConfigError(f"give {ref('seeds')} or one seed, not both")
        own = typing.get_type_hints(RecordConfig)
        if seed is not None:
            seeds = (conform(seed, int, "seeds"),)
        seeds = (0,) if seeds is None else conform(seeds, own["seeds"], "seeds")
        object.__setattr__(self, "seeds", seeds)
        object.__setattr__(self, "device", conform(device, own["device"], "device"))
        object.__setattr__(self, "allow_tf32", conform(allow_tf32, own["allow_tf32"],
                                                       "allow_tf32"))
        precision = conform(precision, own["precision"], "precision")
        for name, value in (("memory_format", memory_format), ("reproducible", reproducible),
                            ("threads", threads)):
            object.__setattr__(self, name, conform(value, own[name], name))
        object.__setattr__(self, "axes", normalize_axes(axes, _FLAT_KEYS))
        self._resolve_precision(precision)
        if not any(a.name in _PLAIN_SGD_FIELDS for a in self.axes):
            # Otherwise "auto" stays unresolved here and each run's configuration resolves it.
            self._resolve_probe_direction()
        self.validate()

    @property
    def seed(self) -> int:
        """The first seed: it draws the validation split and the DLN's data (shared by all runs)."""
        return self.seeds[0]

    @property
    def plain_sgd(self) -> bool:
        """SGD without momentum or weight decay: its update is exactly −lr·g_t."""
        o = self.optim
        return o.optimizer == "sgd" and o.momentum == 0 and o.weight_decay == 0

    def _resolve_precision(self, precision: str) -> None:
        """precision tf32 and allow_tf32 are one setting: each implies the other."""
        if precision not in PRECISIONS:
            raise ConfigError(f"{ref('precision')} must be one of {', '.join(PRECISIONS)}, "
                              f"got {precision!r}")
        if precision == "tf32":
            object.__setattr__(self, "allow_tf32", True)
        elif precision == "float32" and self.allow_tf32:
            precision = "tf32"
        object.__setattr__(self, "precision", precision)

    def _resolve_probe_direction(self) -> None:
        probe = self.recording.probe
        if probe.direction == "auto":
            resolved = replace(probe, direction="gradient" if self.plain_sgd else "update")
            object.__setattr__(self, "recording", replace(self.recording, probe=resolved))

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails: the flat names of the parts' fields.
        part = _FLAT_KEYS.get(name)
        if part is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return getattr(object.__getattribute__(self, part), name)

    def validate(self) -> None:
        if not _DEVICE.fullmatch(self.device):
            raise ConfigError(f"{ref('device')} must be cpu, cuda or cuda:N, got {self.device!r} "
                              f"(landscape.sweep.resolve_device turns 'auto' into one)")
        if self.memory_format not in MEMORY_FORMATS:
            raise ConfigError(f"{ref('memory_format')} must be one of "
                              f"{', '.join(MEMORY_FORMATS)}, got {self.memory_format!r}")
        if self.threads is not None and not 1 <= self.threads <= MAX_THREADS:
            raise ConfigError(f"{ref('threads')} must be from 1 to {MAX_THREADS:,}, got "
                              f"{self.threads}")
        if not self.seeds:
            raise ConfigError(f"{ref('seeds')} needs at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"a seed is listed twice in {ref('seeds')}: "
                              f"{', '.join(map(str, self.seeds))}")
        if any(not isinstance(s, int) or s < 0 for s in self.seeds):
            raise ConfigError(f"{ref('seeds')} must be whole numbers >= 0, got {self.seeds}")
        if any(s > MAX_SEED for s in self.seeds):
            raise ConfigError(f"{ref('seeds')} must be at most {MAX_SEED:,} (2**32 - 1), got "
                              f"{max(self.seeds)}")
        self.model.validate()
        self.optim.validate()
        self.data.validate()
        if self.recording.keep_best and self.data.val_split is None:
            raise ConfigError(f"{ref('recording.keep_best')} needs {ref('data.val_split')} (the "
                              f"best weights are those of the best validation accuracy)")
        if self.optim.early_stop is not None and self.data.val_split is None:
            raise ConfigError(f"{ref('optim.early_stop')} needs {ref('data.val_split')} (it "
                              f"watches the loss on the validation images)")
        self._check_image_only()
        self.recording.validate()
        # After the parts' own range checks (their messages say more): no float is NaN or
        # infinite anywhere (an input mean of NaN would train a run that can only diverge).
        for part, prefix in ((self.model, "model."), (self.data, "data."), (self.optim, "optim."),
                             (self.recording, "recording."),
                             (self.recording.probe, "recording.probe."),
                             (self.recording.hessian, "recording.hessian.")):
            check_finite(part, prefix)
        if self.axes:
            check_axes(self)  # config/levels.py
            self._check_norm_axis()

    def _check_image_only(self) -> None:
        """Options that exist for image classification only (labels, images, a split)."""
        other = [m for m in self.model.models if model_task(m) != IMAGE_CLASSIFICATION]
        if not other:
            return
        data = self.data
        for path, given in (("optim.label_smoothing", self.optim.label_smoothing > 0),
                            ("optim.loss", self.optim.loss != "cross_entropy"),
                            ("data.erase_prob", data.erase_prob > 0),
                            ("data.autoaugment", data.autoaugment),
                            ("data.rotation", data.rotation > 0),
                            ("data.color_jitter", any(data.color_jitter)),
                            ("data.val_split", data.val_split is not None)):
            if given:
                raise ConfigError(f"{ref(path)} applies to image classification; model "
                                  f"{other[0]!r} learns {model_task(other[0])}")

    def _check_norm_axis(self) -> None:
        """Varying the normalization gives every model each kind: two models of one family
        would train each network twice (vgg and vgg_bn at norm=gn are both vgg_gn)."""
        if not any(a.name == "norm" for a in self.axes):
            return
        families = {}
        for model in self.axis_models("norm"):
            family = MODELS[model].family if model in MODELS else model
            if family in families:
                raise ConfigError(f"--vary norm gives every model each normalization: list one "
                                  f"model of family {family!r}, not {families[family]} and "
                                  f"{model}", field="model.models")
            families[family] = model

    def axis_models(self, name: str) -> tuple[str, ...]:
        """The models axis `name` applies to (see config/axes.py)."""
        return self.__dict__.get("_axis_scope", {}).get(name, self.model.models)

    def model_levels(self, model: str) -> list[dict[str, Any]]:
        """The levels (axis -> value) of `model`'s runs: the product of the axes that apply to
        it; [{}] without axes."""
        return levels([a for a in self.axes if model in self.axis_models(a.name)])

    def grid(self) -> list[tuple[int, str, float, dict[str, Any]]]:
        """Every run as (seed, model, lr, levels): seeds in the order given; within a seed the
        axes' levels (first axis slowest), then the models, then the learning rates, in the
        order given, so that a sweep cut short has whole levels of every model. A model an
        axis does not apply to is planned once for all of that axis's levels."""
        out, seen = [], set()
        for seed in self.seeds:
            for level in levels(self.axes):
                for model in self.model.models:
                    own = {k: v for k, v in level.items() if model in self.axis_models(k)}
                    for lr in self.optim.lrs:
                        key = (seed, model, lr, tuple(own.items()))
                        if key not in seen:
                            seen.add(key)
                            out.append((seed, model, lr, own))
        return out

    def run_config(self, model: str, lr: float, factors: Mapping[str, Any] | None = None
                   ) -> "RecordConfig":
        """The effective configuration of the run of `model` at `lr` and levels `factors`:
        this record's, with its own model, learning rate and levels, and no axes. Its seeds
        are the record's (the first one draws the data all runs share)."""
        return self.with_changes(axes=(), models=(model,), lrs=(lr,), **dict(factors or {}))

    def flat_values(self) -> dict[str, Any]:
        """The flat fields in the record's order, as they are (the probe a ProbeConfig)."""
        return {key: getattr(self if part is None else getattr(self, part), key)
                for key, part in _FLAT_KEYS.items()}

    def to_dict(self) -> dict[str, Any]:
        """The flat dict the record stores (see _FLAT_KEYS): key order and values are part of
        the record's bytes."""
        values = self.flat_values()
        values["probe"] = asdict(values["probe"])
        values["hessian"] = asdict(values["hessian"])
        values["axes"] = to_json(values["axes"])
        return values

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "RecordConfig":
        """Read back the flat dict of `to_dict` (of any record)."""
        values = dict(values)
        if "seed" in values and "seeds" not in values:  # records before seeds (one seed)
            values["seeds"] = (values.pop("seed"),)
        probe = values.get("probe")
        if isinstance(probe, Mapping) and "direction" not in probe:
            # Records before the probe had a direction probed along the gradient.
            values["probe"] = {**probe, "direction": "gradient"}
        hessian = values.get("hessian")
        if isinstance(hessian, Mapping) and "start" not in hessian:
            # Records before warm starts started Lanczos at random, with a plain trace.
            values["hessian"] = {**BEFORE_WARM_STARTS, **hessian}
        unknown = sorted(set(values) - set(_FLAT_KEYS))
        if unknown:
            raise ConfigError(f"unknown configuration keys: {', '.join(unknown)}")
        axes = values.get("axes")
        if axes and not (isinstance(axes, Mapping)
                         and all(isinstance(v, (list, tuple)) for v in axes.values())):
            raise ConfigError(f"axes must be a mapping of field names to lists of values, as a "
                              f"record stores them, got {axes!r:.60}", field="axes")
        return cls(**values)

    from_flat = from_dict

    def with_changes(self, **changes: Any) -> "RecordConfig":
        """A copy with parts or flat fields changed (validated again)."""
        parts = {name: getattr(self, name) for name in
                 (*_PARTS, "seeds", "device", "allow_tf32", "precision", "axes",
                  "memory_format", "reproducible", "threads")}
        if "seed" in changes:
            parts.pop("seeds")
        return type(self)(**{**parts, **changes})

    def total_steps(self, steps_per_epoch: int) -> int:
        return self.optim.total_steps(steps_per_epoch)


def stored_config(values: Any, source: Any, what: str = "its configuration") -> RecordConfig:
    """The RecordConfig of a configuration a record stores (`values`, its flat dict; `source`
    the record's path, `what` which configuration: the record's or a run's), or RecordError
    naming the record when it is not one this landscape can use (a damaged or edited record:
    a key missing its type, an unknown field, an axis of no field)."""
    if not isinstance(values, Mapping):
        raise RecordError(f"{source} is damaged: {what} is not a JSON object")
    try:
        return RecordConfig.from_dict(values)
    except (ConfigError, TypeError, ValueError, AttributeError, KeyError) as exc:
        reason = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        raise RecordError(f"{source} is damaged: {what} cannot be used: {reason}") from None


def record_config(record: Any) -> RecordConfig:
    """The configuration `record` (a landscape.store.Record) was made with (see
    `stored_config`)."""
    return stored_config(record.config, record.path)


def flat_field_type(key: str) -> Any:
    """The type of the flat configuration key `key` (e.g. int | None for "epochs"), for
    parsing text into it (the command line's --vary); KeyError for an unknown key."""
    part = _FLAT_KEYS[key]
    cls = RecordConfig if part is None else _PARTS[part]
    return typing.get_type_hints(cls)[key]


def flat_keys() -> tuple[str, ...]:
    """The flat configuration keys, in the record's order."""
    return tuple(_FLAT_KEYS)


def total_steps(config: RecordConfig, steps_per_epoch: int) -> int:
    """Steps per run: the epochs asked for, cut at max_steps."""
    return config.optim.total_steps(steps_per_epoch)


def resume_differences(recorded: RecordConfig, asked: RecordConfig) -> list[str]:
    """What `asked` changes of a record's configuration, one 'key (given, recorded)' per flat
    key; the device may differ (a record can be continued elsewhere)."""
    then, now = recorded.flat_values(), asked.flat_values()
    return [f"{key} ({now[key]!r} given, {then[key]!r} recorded)" for key in then
            if key != "device" and now[key] != then[key]]


__all__ = ["RecordConfig", "ProbeConfig", "PRECISIONS", "MAX_RUNS", "MAX_RUN_ID", "total_steps",
           "resume_differences", "run_id", "check_run_count", "record_config", "stored_config"]
