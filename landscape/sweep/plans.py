"""The grid of runs of a record: one training run per (model, learning rate, seed), planned
and checked (taps, layers, inputs) before the file exists."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from landscape.config import RecordConfig, resume_differences, run_id
from landscape.errors import ConfigError, RecordError, field_ref, first_line
from landscape.models import build_model, model_identity, model_source, resolved_options
from landscape.optim import SLBI_OPTIMIZERS, resolve_sparse_layers
from landscape.probes import layer_indices
from landscape.probes import output_channels, select_parameters, weight_entries
from landscape.instrument.layout import check_taps, parameter_shapes, resolve_taps  # noqa: F401 (re-exported)
from landscape.probes.gradient import check_float64_probe
from landscape.store import RunLayout
from landscape.sweep.init_from import InitFrom
from landscape.training.loop import RunOutcome
from landscape.training.tasks import data_shape, for_run
from landscape.version import package_versions


@dataclass(frozen=True)
class RunPlan:
    run_id: str
    model: str
    lr: float
    index: int
    seed: int = 0
    # The levels of the record's axes this run is trained at, as (axis, value) pairs in the
    # axes' order (empty without axes; see RecordConfig.grid).
    levels: tuple[tuple[str, Any], ...] = ()

    @property
    def factors(self) -> dict[str, Any]:
        return dict(self.levels)


def plan_config(config: RecordConfig, plan: RunPlan) -> RecordConfig:
    """The run's effective configuration (RecordConfig.run_config): everything the run trains
    with is read from it, never from the record's."""
    return config.run_config(plan.model, plan.lr, plan.factors)


@dataclass(frozen=True)
class RunResult:
    plan: RunPlan
    outcome: RunOutcome


def plan_runs(config: RecordConfig) -> list[RunPlan]:
    """Seeds in the order given; for each, the levels of the axes (if any), then the models in
    the order given, each at every learning rate in the order given (so a sweep cut short has
    whole seeds of every model: `RecordConfig.grid`). Run ids carry the levels, and the seed
    when the record has several."""
    several = len(config.seeds) > 1
    return [RunPlan(run_id(model, lr, seed if several else None, levels), model, lr, index,
                    seed, tuple(levels.items()))
            for index, (seed, model, lr, levels) in enumerate(config.grid())]


def distinct_run_configs(config: RecordConfig, plans: list[RunPlan]
                         ) -> list[tuple[RecordConfig, list[RunPlan]]]:
    """The runs' effective configurations, each once (learning rates and seeds aside), with
    their plans; the record's own for every plan without axes."""
    if not config.axes:
        return [(config, list(plans))]
    groups: dict[tuple, tuple[RecordConfig, list[RunPlan]]] = {}
    for plan in plans:
        key = (plan.model, plan.levels)
        if key not in groups:
            groups[key] = (plan_config(config, plan), [])
        groups[key][1].append(plan)
    return list(groups.values())


def planned_steps(config: RecordConfig, task, plans: list[RunPlan]) -> int:
    """The training steps of all `plans` together (runs of a record with axes may differ in
    their length: epochs at another batch size, another max_steps)."""
    total = 0
    for run_config, group in distinct_run_configs(config, plans):
        stream = for_run(task, run_config).stream(config.seeds[0])
        total += len(group) * run_config.optim.total_steps(stream.steps_per_epoch)
    return total


def resolve_device(name: str) -> torch.device:
    """'auto' -> CUDA when available, else CPU; anything else must exist on this machine."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r}; use cpu, cuda, cuda:N or auto") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"{field_ref('device')} {name}: no CUDA device is available on "
                              f"this machine; use {field_ref('device')} cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"{field_ref('device')} {name}: this machine has "
                              f"{torch.cuda.device_count()} CUDA device(s)")
    elif device.type != "cpu":
        raise ConfigError(f"unsupported device {name!r}; use cpu, cuda, cuda:N or auto")
    return device


def model_options(config: RecordConfig) -> dict:
    """The build_model options the config asks for beyond the model's own defaults (a model
    without such an option refuses it with a clear error)."""
    return config.model.options()


def probe_model(config: RecordConfig, model_name: str, task=None) -> nn.Module:
    """A model to read names and shapes from (for `task`'s data: its classes), built without
    touching the global random state (which the runs' initialization, dropout and noise draw
    from)."""
    with torch.random.fork_rng(devices=[]):
        return build_model(model_name, **model_options(config), **data_shape(task))


def run_layouts(config: RecordConfig, plans: list[RunPlan], task) -> list[RunLayout]:
    """What every run will record; checks taps and probed layers against each model (built
    with each run's own options, for `task`'s data: one dry forward pass refuses a model that
    cannot take its images or does not give one output per class)."""
    recording = config.recording  # the same for every run (it cannot vary: config/axes.py)
    example = task.example_input()
    built: dict[tuple, tuple] = {}  # (model, its options) -> (model, shapes, channels)
    layouts = []
    for plan in plans:
        run_config = plan_config(config, plan)
        key = (plan.model, repr(sorted(model_options(run_config).items())))
        if key not in built:
            model = probe_model(run_config, plan.model, task)
            check_input(model, plan.model, example, getattr(task, "num_classes", None))
            built[key] = (model, parameter_shapes(model),
                          activation_channels(config, model, example), _model_attrs(
                              run_config, plan.model, model, task))
        model, shapes, channels, identity = built[key]
        models, shapes, channels = ({plan.model: model}, {plan.model: shapes},
                                    {plan.model: channels})
        taps = resolve_taps(recording.taps, models[plan.model], plan.model)
        check_taps(taps, shapes[plan.model], plan.model)
        # Layers are checked only for measurements that are on (a preset's ICS layers need
        # not exist in a model that is recorded with --ics-every 0).
        for layer in recording.ics_layers if recording.ics_every else ():
            layer_indices(list(shapes[plan.model]), layer)
        if recording.probe.every:
            select_parameters(list(shapes[plan.model]), recording.probe.params)
            if recording.probe.dtype == "float64":  # refused before the file exists
                check_float64_probe(models[plan.model],
                                    penalties=bool(run_config.optim.l1 or run_config.optim.l2))
        optim = run_config.optim
        sparse = (resolve_sparse_layers(optim.slbi_layers, shapes[plan.model], plan.model)
                  if optim.optimizer in SLBI_OPTIMIZERS else [])
        layouts.append(RunLayout(
            run_id=plan.run_id,
            attrs={
                "model": plan.model,
                **identity,
                "lr": plan.lr,
                "optimizer": optim.optimizer,
                "seed": plan.seed,
                "index": plan.index,
                "parameter_count": int(sum(np.prod(s) for s in shapes[plan.model].values())),
                **({"probe_direction": run_config.recording.probe.direction,
                    "probe_dtype": recording.probe.dtype} if recording.probe.every else {}),
                # Schema version 4: the levels it differs in and what it trained with.
                "factors": plan.factors,
                "config": run_config.to_dict(),
            },
            taps={t: shapes[plan.model][t] for t in taps},
            tap_dtype=recording.tap_dtype,
            n_eta=recording.probe.count if recording.probe.every else 0,
            ics_layers=recording.ics_layers if recording.ics_every else (),
            activations=channels[plan.model],
            weights=weight_entries(models[plan.model]) if recording.saves_weights else {},
            hessian_k=recording.hessian.k if recording.hessian.every else 0,
            hessian_density_nodes=(recording.hessian.density_iters
                                   * recording.hessian.density_vectors
                                   if recording.hessian.density_at else 0),
            sparse_layers={n: shapes[plan.model][n] for n in sparse},
        ))
    return layouts


def _model_attrs(config: RecordConfig, name: str, model: nn.Module, task) -> dict[str, Any]:
    """The run attributes that say which network it trains: the network without its
    normalization and the normalization (the report pairs runs by these:
    landscape.report.compare.norm_pairs), where the model comes from (with its package's
    version) and the options it was built with (the data's class count included)."""
    family, norm = model_identity(name, config.model.norm, model)
    options = resolved_options(name, **model_options(config), **data_shape(task))
    return {"family": family, "norm": norm, "model_source": model_source(name),
            "build_options": {k: _json_value(v) for k, v in options.items()}}


def _json_value(value: Any) -> Any:
    return value if value is None or isinstance(value, (bool, int, float, str)) else repr(value)


def check_input(model: nn.Module, model_name: str, example: torch.Tensor,
                num_classes: int | None = None) -> None:
    """Refuse, before the file exists and in one line, a model that cannot take the data's
    images (LeNet-5's 28x28 single-channel input and CIFAR-10's 3x32x32, say; InstanceNorm
    where a layer's output has one position) or does not give `num_classes` outputs per image:
    one forward pass in training mode, as training runs it, on two zero images (`model` is a
    throwaway: its running statistics move)."""
    if example.dim() != 4:
        return  # not images: the deep linear network's vectors
    shape = "x".join(map(str, example.shape[1:]))
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        try:
            out = model.train()(example)
        except (RuntimeError, ValueError, AssertionError) as exc:
            raise ConfigError(f"model {model_name!r} cannot take the data's {shape} images "
                              f"({first_line(exc)}); pick a model for this dataset "
                              f"(lenet5 for mnist)") from None
    expected = (len(example), num_classes)
    if num_classes is not None and (not torch.is_tensor(out) or tuple(out.shape) != expected):
        got = list(out.shape) if torch.is_tensor(out) else type(out).__name__
        raise ConfigError(f"model {model_name!r} gives {got} for {len(example)} images of the "
                          f"data's {shape}, which have {num_classes} classes: it must give "
                          f"[N, {num_classes}] (e.g. --model-option num_classes={num_classes} "
                          f"where its builder takes it)")



def activation_channels(config: RecordConfig, model: nn.Module, example: torch.Tensor
                        ) -> dict[str, int]:
    if not config.recording.activation_every:
        return {}
    with torch.random.fork_rng(devices=[]):
        return {layer: output_channels(model, layer, example)
                for layer in config.recording.activation_layers}


def versions(config: RecordConfig | None = None) -> dict[str, str]:
    """The versions a record stores: landscape's, its libraries' and, where a model of
    `config` comes from timm, timm's (each run's `model_source` says it too)."""
    out = package_versions()
    if config is not None and any(m.startswith("timm:") for m in config.model.models):
        import timm

        out["timm"] = timm.__version__
    return out


def check_init_from(config: RecordConfig, task=None) -> None:
    """Refuse (before the file exists) --init-from weights that are missing or do not fit
    one of the models."""
    if config.model.init_from is not None:
        source = InitFrom.parse(config.model.init_from)
        for name in config.model.models:
            source.load_into(probe_model(config, name, task), name)


def check_weight_steps(config: RecordConfig, steps_per_epoch: int) -> None:
    """Refuse (before the file exists) weights asked for at steps the runs will not reach."""
    total = config.optim.total_steps(steps_per_epoch)
    late = [s for s in config.recording.save_weights_at if s >= total]
    if late:
        raise ConfigError(f"{field_ref('recording.save_weights_at')} {late[0]} is past the last "
                          f"step of these runs (steps 0 to {total - 1}); 'end' keeps the "
                          f"weights after the last step")


def check_planned_runs(path: str | Path, planned: Sequence[str], held: Sequence[str]) -> None:
    """Refuse to resume a record whose configuration plans other runs than the record holds (an
    axis that gained or lost a level, a model added: an edited or damaged record): resuming
    would train runs the record has no place for, or leave some unplanned."""
    new, gone = [r for r in planned if r not in held], [r for r in held if r not in planned]
    if new or gone:
        what = (f"its configuration plans runs it does not hold ({', '.join(new[:3])}"
                f"{', ...' if len(new) > 3 else ''})" if new else
                f"it holds runs its configuration does not plan ({', '.join(gone[:3])}"
                f"{', ...' if len(gone) > 3 else ''})")
        raise RecordError(f"{path} is damaged or was edited: {what}; it cannot be resumed "
                          f"(record the runs anew, into a new record)")


def check_resume_compatible(path: str | Path, recorded: RecordConfig, *,
                            asked: RecordConfig | None = None,
                            data_now: Mapping | None = None,
                            data_then: Mapping | None = None) -> None:
    """Refuse to continue the record at `path` (configured as `recorded`) with other options
    (`asked`: ConfigError naming every difference; the device may differ) or with other data
    than it was recorded with (`data_now` and `data_then`, identity dicts: RecordError)."""
    if asked is not None:
        differences = resume_differences(recorded, asked)
        if differences:
            raise ConfigError(f"{field_ref('resume')} continues {path} with its own options; "
                              f"these differ: " + "; ".join(differences))
    if data_now is not None:
        for key in ("name", "n_train", "n_test", "train_sha256", "test_sha256", "val_sha256"):
            now, then = data_now[key], (data_then or {}).get(key, "")
            if now != then:
                raise RecordError(
                    f"the data found now differ from the data {path} was recorded with "
                    f"({key}: {now} now, {then} then)")
