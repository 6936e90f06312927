"""The headings of `landscape record --help` (landscape.cli._sections): which option goes
where, by click's parameter name. An option missing here still shows, under "Other options"."""

from __future__ import annotations

RECORD_SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("What to train", ("preset", "models", "model_options", "norm", "width", "dropout", "lrs",
                       "seeds", "seed")),
    ("Data", ("dataset", "data_dir", "download", "no_verify", "subset", "val_split",
              "crop_padding", "flip", "erase_prob")),
    ("Optimizer and schedule", (
        "optimizer", "momentum", "nesterov", "weight_decay", "slbi_kappa", "slbi_mu",
        "slbi_layers", "schedule", "lr_min", "lr_step_epochs", "lr_gamma", "lr_milestones",
        "cycle_steps", "label_smoothing", "l1", "l2")),
    ("Run length and evaluation", ("batch_size", "epochs", "max_steps", "eval_every",
                                   "early_stop")),
    ("Recorded every step: taps", ("taps", "no_taps", "tap_every", "tap_dtype")),
    ("The paper's probe (loss and gradient along a line)", (
        "probe_every", "probe_range", "probe_scale", "probe_count", "probe_spacing",
        "probe_direction", "probe_dtype", "probe_params")),
    ("Internal covariate shift and activations", (
        "ics_every", "ics_layers", "activation_every", "activation_layers",
        "old_activations_every")),
    ("Hessian probe", ("hessian_every", "hessian_k", "hessian_iters", "hessian_tol",
                       "hessian_start", "hessian_trace_samples", "hessian_trace_method",
                       "hessian_trace_deflate", "hessian_trace_se", "hessian_density_at",
                       "hessian_density_iters", "hessian_density_vectors")),
    ("Kept weights (for surface and prune)", ("save_weights_every", "save_weights_at")),
    ("Device and arithmetic", ("device", "precision", "tf32", "memory_format", "reproducible",
                               "threads")),
    ("Output, resuming and writing", ("out", "overwrite", "resume_path", "flush_seconds",
                                      "checkpoint_seconds")),
    ("Executor (local or Ray)", ("executor", "ray_address", "cpus_per_run", "gpus_per_run")),
)
