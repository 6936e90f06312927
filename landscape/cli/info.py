"""`landscape info`: what a record holds, run by run."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from landscape.cli.common import duration, echo_table, user_errors
from landscape.errors import RecordError
from landscape.store import (RunStatus, StopReason, from_user_loop, open_record, shard_folder,
                             shards_in_progress, storage_sizes)


def _value(value) -> str:
    """An axis value as run ids show it (landscape.config.axes.format_value, which `info` does
    not import: the config package imports torch, and reading a record must not)."""
    if value is None or isinstance(value, bool):
        return {None: "none", True: "true", False: "false"}[value]
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return "+".join(map(_value, value))
    return str(value).replace("/", "_")


def _seeds_text(cfg: dict) -> str:
    seeds = cfg.get("seeds", [cfg.get("seed")])  # records before --seeds had one "seed"
    return f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {', '.join(map(str, seeds))}"


@click.command()
@click.argument("record_path", metavar="RECORD.h5", type=click.Path(path_type=Path))
@user_errors
def info(record_path: Path) -> None:
    """Show a record's data, configuration and runs (status, steps, accuracies, taps)."""
    rec = open_record(record_path)
    try:
        lines = _header_lines(rec)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        # A record whose header holds what no landscape writer writes (edited, or damaged).
        reason = f"it has no {exc.args[0]!r}" if isinstance(exc, KeyError) else str(exc)
        raise RecordError(f"{rec.path} is damaged: its configuration or data description "
                          f"cannot be shown ({reason})") from None
    for line in lines:
        click.echo(line)
    _echo_runs(rec, bool(rec.data.get("n_val")))
    unfinished = [r.run_id for r in rec.runs.values() if not r.finished]
    if unfinished:
        click.echo(f"Incomplete runs: {', '.join(unfinished)}")
    _echo_surfaces(rec)
    _echo_sizes(record_path)
    _echo_shards(record_path)


def _header_lines(rec) -> list[str]:
    """The lines above the runs table: the record, data, training, options, axes, probe,
    kept weights and Hessian."""
    cfg, data = rec.config, rec.data
    lines = [f"{rec.path}  (schema {rec.schema_version}, created {rec.created}, "
             f"landscape {rec.versions.get('landscape')}, torch {rec.versions.get('torch')})"]
    if from_user_loop(cfg):  # a user's loop wrote it (landscape.Recorder)
        lines += _recorder_header(cfg, data)
    else:
        lines += _record_header(rec, cfg, data)
    return lines + _measurement_lines(cfg)


def _recorder_header(cfg: dict, data: dict) -> list[str]:
    """What a record of a user's loop (landscape.Recorder) says of its data and training."""
    return [f"Data: {data.get('description', data.get('name'))}",
            f"Training: your own loop (landscape.Recorder): "
            f"{cfg.get('optimizer') or 'optimizers differ'}, lr "
            f"{', '.join(f'{lr:g}' for lr in cfg.get('lrs', []))}, batch "
            f"{cfg.get('batch_size') or 'sizes differ'}, loss "
            f"{cfg.get('loss') or 'losses differ'}, {_seeds_text(cfg)}"]


def _record_header(rec, cfg: dict, data: dict) -> list[str]:
    """What a record of `landscape record` says of its data, training and axes."""
    val = f" / {data['n_val']:,} validation" if data.get("n_val") else ""
    lines = [f"Data: {data['name']}: {data['n_train']:,} training{val} / {data['n_test']:,} "
             f"held-out samples; {data['note']}"]
    axes = cfg.get("axes") or {}  # records before axes have none
    optimizer = "optimizer varied" if "optimizer" in axes else cfg["optimizer"]
    batch = "varied" if "batch_size" in axes else cfg["batch_size"]
    lines.append(f"Training: {optimizer}, lr {', '.join(f'{lr:g}' for lr in cfg['lrs'])}, "
                 f"batch {batch}, {_length_text(cfg, rec.runs.values())}, "
                 f"{_seeds_text(cfg)}, device {cfg['device']}")
    extras = _training_options(cfg)
    if extras:
        lines.append(f"Options: {'; '.join(extras)}")
    lines += _model_lines(rec.runs.values())
    if axes:
        lines.append("Axes: " + "; ".join(f"{name} = {', '.join(map(_value, values))}"
                                          for name, values in axes.items())
                     + f" ({len(rec.runs)} runs; each run's levels are in its id)")
    return lines


def _measurement_lines(cfg: dict) -> list[str]:
    """The probes, kept weights and Hessian probe a record's runs measure."""
    lines = []
    probe = cfg.get("probe") or {}
    if probe.get("every"):
        direction = probe.get("direction", "gradient")  # records before directions: gradient
        if direction == "update":
            where = "along the update w + c*(w_next - w), c"
        else:
            where = "along the gradient w - eta*g, eta"
        unit = "x lr" if probe["scale"] == "relative" and direction == "gradient" else \
            "x update" if direction == "update" else "(absolute)"
        lines.append(f"Probe: every {probe['every']} steps, {where} at {probe['count']} values in "
                     f"[{probe['low']:g}, {probe['high']:g}] {unit}, {probe['spacing']} spacing"
                     f"{', float64' if probe.get('dtype') == 'float64' else ''}")
    weights = _weights_text(cfg)
    if weights:
        lines.append(f"Weights kept: {weights} (for landscape surface / prune)")
    hessian = cfg.get("hessian") or {}  # records before the Hessian probe have none
    if hessian.get("every") or hessian.get("density_at"):
        parts = []
        if hessian.get("every"):
            parts.append(_hessian_text(hessian))
        if hessian.get("density_at"):
            parts.append(f"density at steps {', '.join(map(str, hessian['density_at']))}")
        lines.append("Hessian: " + "; ".join(parts))
    return lines

def _echo_runs(rec, has_val: bool) -> None:
    """Every run's status, steps, accuracies, probes, time and taps."""
    rows, changed = [], []
    for run in rec.runs.values():
        data = rec.load(run.run_id)
        ev = data.eval
        steps = data.steps
        # A loop that changed the gradient between measuring and stepping (clipping): the
        # measured gradient is the raw one, the record says which steps differ.
        differs = int(np.sum(np.isfinite(steps.applied_grad_norm)
                             & ~np.isclose(steps.applied_grad_norm, steps.grad_norm, rtol=1e-5)))
        if differs:
            changed.append(f"{run.run_id} ({differs} of {len(steps.step)} steps)")
        status = run.status + (f" at step {run.diverged_step}" if run.diverged_step is not None
                               else "")
        if run.stop_reason == StopReason.EARLY_STOP:
            status += " (early stop)"
        rows.append([
            run.run_id, run.model, f"{run.lr:g}", status, str(run.steps_done),
            f"{ev.train_acc[-1]:.3f}" if len(ev.step) else "-",
            f"{ev.test_acc[-1]:.3f}" if len(ev.step) else "-",
            *([f"{ev.val_acc[-1]:.3f}" if len(ev.step) else "-"] if has_val else []),
            str(len(data.probe.step)) if data.probe is not None else "-",
            duration(run.seconds),
            ", ".join(run.taps) or "-",
        ])
    echo_table(rows, ["run", "model", "lr", "status", "steps", "train acc", "test acc",
                      *(["val acc"] if has_val else []), "probes", "time", "taps"])
    if changed:
        click.echo("The gradient the optimizer stepped with differs from the one measured (the "
                   "loop changed it after rec.step, e.g. clipping; steps/applied_grad_norm): "
                   + ", ".join(changed))


def _megabytes(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 50_000 else f"{n / 1e3:.0f} kB"


def _echo_sizes(record_path: Path) -> None:
    """The file's size and each kind of table's share of it (largest first), with the size of
    its values where compression (or unused chunk rows) makes the two differ."""
    parts = sorted(storage_sizes(record_path).items(), key=lambda kv: -kv[1].stored)
    total = record_path.stat().st_size
    shown = [f"{kind} {_megabytes(size.stored)}"
             + (f" ({_megabytes(size.data)} of values)"
                if abs(size.stored - size.data) > 0.1 * max(size.data, 50_000) else "")
             for kind, size in parts if size.stored >= 0.01 * total]
    rest = total - sum(size.stored for kind, size in parts if size.stored >= 0.01 * total)
    click.echo(f"File: {_megabytes(total)}: {', '.join(shown + [f'other {_megabytes(rest)}'])}")


def _echo_surfaces(rec) -> None:
    """The loss surfaces computed around the runs' kept weights (`landscape surface`)."""
    rows = []
    for run_id in rec.runs:
        for name, surface in rec.surfaces(run_id).items():
            o = surface.options
            rows.append([run_id, name, str(o.get("step")), f"{o.get('dims')}D",
                         f"{o.get('points')} x [{o.get('low'):g}, {o.get('high'):g}]",
                         str(o.get("direction")), f"{int(surface.done.sum())}/{surface.done.size}"])
    if rows:
        click.echo("Loss surfaces:")
        echo_table(rows, ["run", "surface", "step", "dims", "points x range", "directions",
                          "done"])


def _echo_shards(record_path: Path) -> None:
    """The runs a Ray sweep is writing (or left) in shards next to the record."""
    shards = shards_in_progress(record_path)
    if not shards:
        return
    click.echo(f"Shards in progress ({shard_folder(record_path)}):")
    echo_table([[run_id, run.status if run else "starting", str(run.steps_done) if run else "-"]
                for run_id, run in shards.items()], ["run", "status", "steps"])


def _length_text(cfg: dict, runs) -> str:
    """How long each run trains: '20 steps per run (--max-steps 20, before --epochs 20 end)',
    not '20 epochs, at most 20 steps', which reads as both."""
    epochs, max_steps = cfg.get("epochs"), cfg.get("max_steps")
    if not max_steps:
        return f"{_count(epochs, 'epoch')} per run"
    if not epochs:
        return f"{_count(max_steps, 'step')} per run"
    done = {r.steps_done for r in runs
            if r.status == RunStatus.COMPLETE and r.stop_reason == StopReason.PLANNED}
    if done == {max_steps}:
        return (f"{_count(max_steps, 'step')} per run (--max-steps {max_steps}, before "
                f"--epochs {epochs} end)")
    if len(done) == 1:
        return (f"{_count(epochs, 'epoch')} = {_count(done.pop(), 'step')} per run "
                f"(--max-steps {max_steps} not reached)")
    return f"{_count(epochs, 'epoch')} or {_count(max_steps, 'step')} per run, whichever ends first"


def _count(n: int, word: str) -> str:
    return f"{n:,} {word}{'s' if n != 1 else ''}"


def _hessian_text(hessian: dict) -> str:
    """The eigenvalue and trace part of the Hessian line (records before version 5 lack
    `start` and `trace_method`: they started at random with a plain trace)."""
    start = hessian.get("start", "random")
    if hessian.get("trace_se"):
        vectors = f"to {hessian['trace_se']:g} relative s.e., <= {hessian['trace_samples']} vectors"
    else:
        vectors = f"{hessian['trace_samples']} vectors"
    if hessian.get("trace_method", "hutchinson") == "deflated":
        vectors += f", deflated by >= {min(hessian['trace_deflate'], hessian['iters'])} " \
                   f"Lanczos vectors"
    return (f"top {hessian['k']} eigenvalue{'s' if hessian['k'] > 1 else ''} (Lanczos, "
            f"<= {hessian['iters']} steps, tol {hessian['tol']:g}, {start} starts) and trace "
            f"({vectors}) every {hessian['every']} steps")


def _weights_text(cfg: dict) -> str:
    """When the runs keep their weights (records before --save-weights lack the keys)."""
    parts = []
    if cfg.get("save_weights_every"):
        parts.append(f"every {cfg['save_weights_every']} steps")
    if cfg.get("save_weights_at"):
        parts.append(f"at steps {', '.join(map(str, cfg['save_weights_at']))}")
    if cfg.get("save_final_weights"):
        parts.append("after the last step")
    if cfg.get("keep_best"):
        parts.append("at each new best validation accuracy (--step best)")
    return "; ".join(parts)


def _training_options(cfg: dict) -> list[str]:
    """The schedule, regularization, augmentation and validation options that are not off
    (records from before these options lack the keys)."""
    out = []
    schedule = cfg.get("schedule", "constant")
    if schedule != "constant":
        detail = {
            "step": f"x{cfg.get('lr_gamma'):g} every {cfg.get('lr_step_epochs')} epochs",
            "multistep": f"x{cfg.get('lr_gamma'):g} at epochs "
                         f"{','.join(str(m) for m in cfg.get('lr_milestones', ()))}",
            "cosine": f"to {cfg.get('lr_min'):g}",
            "cyclic": f"from {cfg.get('lr_min'):g}, {cfg.get('cycle_steps')} steps per half cycle",
        }.get(schedule, "")
        out.append(f"{schedule} schedule {detail}".strip())
    if cfg.get("nesterov"):
        out.append("nesterov")
    if cfg.get("momentum"):
        out.append(f"momentum {cfg['momentum']:g}")
    if cfg.get("weight_decay"):
        out.append(f"weight decay {cfg['weight_decay']:g}")
    if cfg.get("optimizer") in ("slbi", "slbi_adam"):
        layers = ",".join(cfg.get("slbi_layers") or ()) or "every conv and linear weight"
        out.append(f"DessiLBI kappa {cfg.get('slbi_kappa'):g}, mu {cfg.get('slbi_mu'):g}, "
                   f"Gamma on {layers}")
    for key, label in (("label_smoothing", "label smoothing"), ("l1", "l1"), ("l2", "l2"),
                       ("dropout", "dropout"), ("erase_prob", "erase prob"),
                       ("val_split", "val split")):
        if cfg.get(key):
            out.append(f"{label} {cfg[key]:g}")
    if cfg.get("early_stop"):
        watched = "accuracy" if cfg.get("early_stop_metric") == "acc" else "loss"
        gain = (f" of more than {cfg['early_stop_min_delta']:g}"
                if cfg.get("early_stop_min_delta") else "")
        out.append(f"early stop after {cfg['early_stop']} evaluations without a validation "
                   f"{watched} improvement{gain}")
    return out + _practice_options(cfg)


def _model_lines(runs) -> list[str]:
    """'Model torchvision:resnet18: torchvision 0.29.1: ...get_model('resnet18'); kinds none,
    bn, gn; built with num_classes=10' per model from outside the table (older records and
    the table's models say nothing more than their names)."""
    sources: dict[str, tuple[str, list]] = {}
    for run in runs:
        source = run.attrs.get("model_source")
        if source and not source.startswith("landscape"):
            kinds = sources.setdefault(run.model, (source, []))[1]
            if run.norm not in kinds:
                kinds.append(run.norm)
    lines = []
    for model, (source, kinds) in sources.items():
        options = next(r.attrs.get("build_options") or {} for r in runs if r.model == model)
        built = ", ".join(f"{k}={v}" for k, v in options.items() if k != "norm")
        lines.append(f"Model {model}: {source}; normalization {', '.join(kinds)}"
                     + (f"; built with {built}" if built else ""))
    return lines


def _practice_options(cfg: dict) -> list[str]:
    """Model, loss, input and augmentation options that differ from the defaults (records
    from before them lack the keys: they had the defaults)."""
    out = []
    for key, label in (("activation", "activation"), ("norm_placement", "norm placement"),
                       ("loss", "loss"), ("init_from", "initialized from")):
        if cfg.get(key) not in (None, "cross_entropy"):
            out.append(f"{label} {cfg[key]}")
    if cfg.get("betas"):
        out.append(f"betas {','.join(f'{b:g}' for b in cfg['betas'])}")
    mean, std = cfg.get("mean", [0.5] * 3), cfg.get("std", [0.5] * 3)
    if cfg.get("normalize_from") == "train":
        out.append("input mean and std of the training split (Data's train_mean, train_std)")
    elif set(mean) != {0.5} or set(std) != {0.5}:
        out.append(f"input mean {','.join(f'{m:g}' for m in mean)}, std "
                   f"{','.join(f'{s:g}' for s in std)}")
    if cfg.get("crop_padding"):
        out.append(f"random crop (padding {cfg['crop_padding']})")
    if cfg.get("flip"):
        out.append("horizontal flip")
    if cfg.get("erase_prob") and list(cfg.get("erase_scale", [0.02, 0.33])) != [0.02, 0.33]:
        out.append(f"erase scale {','.join(f'{v:g}' for v in cfg['erase_scale'])}")
    if cfg.get("autoaugment"):
        out.append("AutoAugment (CIFAR-10 policy)")
    if cfg.get("rotation"):
        out.append(f"rotation +-{cfg['rotation']:g} deg")
    if any(cfg.get("color_jitter") or ()):
        out.append(f"color jitter {','.join(f'{v:g}' for v in cfg['color_jitter'])}")
    return out + _arithmetic_options(cfg)


def _arithmetic_options(cfg: dict) -> list[str]:
    """What the record pinned of its arithmetic (records before these keys pinned nothing)."""
    out = []
    if cfg.get("reproducible"):
        out.append("reproducible (memory format, threads and deterministic kernels pinned)")
    if cfg.get("memory_format", "auto") != "auto":
        out.append(f"memory format {cfg['memory_format']}")
    if cfg.get("threads"):
        out.append(f"{cfg['threads']} torch threads")
    return out

