"""The command line's name for each configuration field: library errors name fields
("optim.lr_min"), users see the flag they typed ("--lr-min")."""

from __future__ import annotations

from landscape.errors import ConfigError

FLAGS: dict[str, str] = {
    "model.models": "--model",
    "model.width": "--width",
    "model.dropout": "--dropout",
    "model.activation": "--activation",
    "model.init_from": "--init-from",
    "model.norm_placement": "--norm-placement",
    "data.mean": "--mean",
    "data.std": "--std",
    "data.autoaugment": "--autoaugment",
    "data.rotation": "--rotation",
    "data.color_jitter": "--color-jitter",
    "data.erase_scale": "--erase-scale",
    "optim.betas": "--betas",
    "optim.loss": "--loss",
    "optim.early_stop_metric": "--early-stop-on",
    "optim.early_stop_min_delta": "--early-stop-min-delta",
    "data.data_dir": "--data-dir",
    "data.dataset": "--dataset",
    "data.download": "--download",
    "data.verify_md5": "--no-verify",
    "data.subset": "--subset",
    "data.crop_padding": "--crop-padding",
    "data.flip": "--flip",
    "data.erase_prob": "--erase-prob",
    "data.val_split": "--val-split",
    "optim.lrs": "--lrs",
    "optim.optimizer": "--optimizer",
    "optim.momentum": "--momentum",
    "optim.nesterov": "--nesterov",
    "optim.weight_decay": "--weight-decay",
    "optim.schedule": "--schedule",
    "optim.lr_min": "--lr-min",
    "optim.lr_step_epochs": "--lr-step-epochs",
    "optim.lr_gamma": "--lr-gamma",
    "optim.lr_milestones": "--lr-milestones",
    "optim.cycle_steps": "--cycle-steps",
    "optim.label_smoothing": "--label-smoothing",
    "optim.l1": "--l1",
    "optim.l2": "--l2",
    "optim.batch_size": "--batch-size",
    "optim.epochs": "--epochs",
    "optim.max_steps": "--max-steps",
    "optim.eval_every": "--eval-every",
    "optim.early_stop": "--early-stop",
    "optim.slbi_kappa": "--slbi-kappa",
    "optim.slbi_mu": "--slbi-mu",
    "optim.slbi_layers": "--slbi-layers",
    "recording.taps": "--tap",
    "recording.tap_every": "--tap-every",
    "recording.tap_dtype": "--tap-dtype",
    "recording.probe.every": "--probe-every",
    "recording.probe.low": "--probe-range",
    "recording.probe.high": "--probe-range",
    "recording.probe.count": "--probe-count",
    "recording.probe.scale": "--probe-scale",
    "recording.probe.spacing": "--probe-spacing",
    "recording.probe.params": "--probe-params",
    "recording.probe.direction": "--probe-direction",
    "recording.probe.dtype": "--probe-dtype",
    "recording.ics_every": "--ics-every",
    "recording.ics_layers": "--ics-layer",
    "recording.activation_every": "--activation-every",
    "recording.activation_layers": "--activation-layer",
    "recording.save_weights_every": "--save-weights-every",
    "recording.save_weights_at": "--save-weights-at",
    "recording.save_final_weights": "--save-weights-at end",
    "recording.flush_seconds": "--flush-seconds",
    "recording.checkpoint_seconds": "--checkpoint-seconds",
    "recording.keep_best": "--keep-best",
    "recording.hessian.every": "--hessian-every",
    "recording.hessian.k": "--hessian-k",
    "recording.hessian.iters": "--hessian-iters",
    "recording.hessian.tol": "--hessian-tol",
    "recording.hessian.trace_samples": "--hessian-trace-samples",
    "recording.hessian.density_at": "--hessian-density-at",
    "recording.hessian.density_iters": "--hessian-density-iters",
    "recording.hessian.density_vectors": "--hessian-density-vectors",
    "seeds": "--seeds",
    "device": "--device",
    "allow_tf32": "--precision tf32",
    "precision": "--precision",
    "memory_format": "--memory-format",
    "reproducible": "--reproducible",
    "threads": "--threads",
    "resume": "--resume",  # not a field: resuming with other options is refused
}


def flag_of(field: str) -> str:
    """The flag of a field path; a field without one keeps its path."""
    return FLAGS.get(field, field)


def flag_message(error: ConfigError) -> str:
    """The error's message as a command-line user reads it."""
    return error.render(flag_of)
