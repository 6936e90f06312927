"""`landscape record`'s options (those of the Hessian probe, the practice options and the
executor have modules of their own: `_hessian`, `_practice`, `_executor`); `record_options` adds
them all to the command, in the order `landscape record --help` lists them within its sections
(`_record_help`)."""

from __future__ import annotations

from pathlib import Path

import click

from landscape.cli._executor import executor_options
from landscape.cli._hessian import hessian_options
from landscape.cli._names import END, LAST_LINEAR, taps_to_cli, warn_if_given
from landscape.cli._practice import practice_options
from landscape.cli._types import CommaList
from landscape.cli._vary import VARY_HELP
from landscape.config.record import MEMORY_FORMATS
from landscape.config import OPTIMIZERS, PRECISIONS, PRESETS, SCHEDULES, RecordConfig
from landscape.data import DATASETS
from landscape.models import MODELS
from landscape.models.norms import NORM_KINDS

_DEFAULT = RecordConfig()

# What to train, on what data, how, and what to record.
_OPTIONS = [
    click.option("--preset", default=None,
                 help=f"Start from a named setup ({', '.join(PRESETS)}; see `landscape presets`); "
                      f"options given explicitly override it."),
    click.option("-m", "--model", "models", type=CommaList(), multiple=True,
                 default=(",".join(_DEFAULT.model.models),),
                 show_default=True,
                 help=f"Models to train (repeat or comma-separate): {', '.join(MODELS)}; or "
                      f"torchvision:NAME (torchvision's get_model), timm:NAME (pip install "
                      f"timm), package.module:factory (a function returning an nn.Module; "
                      f"docs/models.md)."),
    click.option("--model-option", "model_options", multiple=True, metavar="KEY=VALUE",
                 help="A keyword of the models' builder (repeatable), e.g. num_classes=100, "
                      "stem=imagenet; VALUE is read as a number, true/false, none, or text. "
                      "The data's class count is given as num_classes unless set here."),
    click.option("--norm", type=click.Choice(NORM_KINDS), default=None,
                 help="Every model's normalization: none, bn, gn (GroupNorm), ln (LayerNorm "
                      "over C,H,W), in (InstanceNorm), ws (BN + weight standardization), or the "
                      "paper's noisy_bn, l1, l2, linf, noise; a model from outside has each "
                      "BatchNorm layer replaced (docs/normalization.md). --vary norm=none,bn,gn "
                      "compares them [default: each model's own]."),
    click.option("--lrs", type=CommaList(float),
                 default=",".join(f"{lr:g}" for lr in _DEFAULT.optim.lrs), show_default=True,
                 help="Comma-separated learning rates; one run per model, learning rate and "
                      "seed."),
    click.option("--optimizer", type=click.Choice(list(OPTIMIZERS)),
                 default=_DEFAULT.optim.optimizer, show_default=True,
                 help="torch's optimizer of that name, with its own defaults (betas, eps, "
                      "alpha) for what is not set here; slbi and slbi_adam: DessiLBI "
                      "(docs/dessilbi.md)."),
    click.option("--momentum", type=float, default=_DEFAULT.optim.momentum, show_default=True,
                 help="Momentum of sgd or rmsprop (adam and adamw have their own betas)."),
    click.option("--nesterov", is_flag=True,
                 help="Nesterov momentum (sgd with --momentum > 0)."),
    click.option("--weight-decay", type=float, default=_DEFAULT.optim.weight_decay,
                 show_default=True,
                 help="The optimizer's weight decay (decoupled for adamw). Not part of the "
                      "recorded loss; see --l2 for a penalty that is."),
    click.option("--slbi-kappa", type=float, default=_DEFAULT.optim.slbi_kappa, show_default=True,
                 help="slbi, slbi_adam: the damping kappa (W moves with step kappa*lr)."),
    click.option("--slbi-mu", type=float, default=_DEFAULT.optim.slbi_mu, show_default=True,
                 help="slbi, slbi_adam: the coupling mu of each weight W to its sparse Gamma "
                      "(loss + |W - Gamma|^2 / (2 mu))."),
    click.option("--slbi-layers", type=CommaList(), multiple=True,
                 help="slbi, slbi_adam: the layers given a sparse Gamma (conv or linear weights, "
                      "e.g. conv3,fc1) [default: every conv and linear weight]."),
    click.option("--schedule", type=click.Choice(list(SCHEDULES)), default=_DEFAULT.optim.schedule,
                 show_default=True,
                 help="Learning-rate schedule, applied per step: constant; step (x --lr-gamma "
                      "every --lr-step-epochs); multistep (x --lr-gamma at each of "
                      "--lr-milestones); cosine (annealed from lr towards --lr-min over the run); "
                      "cyclic (triangular between --lr-min and lr, --cycle-steps per half cycle)."),
    click.option("--lr-min", type=float, default=_DEFAULT.optim.lr_min, show_default=True,
                 help="cosine: the learning rate annealed to; cyclic: the bottom of the cycle."),
    click.option("--lr-step-epochs", type=int, default=None,
                 help="step: multiply the learning rate by --lr-gamma every N epochs."),
    click.option("--lr-gamma", type=float, default=_DEFAULT.optim.lr_gamma, show_default=True,
                 help="step, multistep: the factor applied at each boundary."),
    click.option("--lr-milestones", type=CommaList(int), default=None,
                 help="multistep: comma-separated epochs at which the learning rate is "
                      "multiplied by --lr-gamma, e.g. 100,150."),
    click.option("--cycle-steps", type=int, default=None,
                 help="cyclic: steps from --lr-min up to lr (half a cycle)."),
    click.option("--label-smoothing", type=float, default=_DEFAULT.optim.label_smoothing,
                 show_default=True,
                 help="Label smoothing of the training cross-entropy (held-out losses stay "
                      "plain)."),
    click.option("--l1", type=float, default=_DEFAULT.optim.l1, show_default=True,
                 help="Add l1 * sum|w| over all parameters to the training objective (recorded "
                      "as the loss and probed)."),
    click.option("--l2", type=float, default=_DEFAULT.optim.l2, show_default=True,
                 help="Add (l2 / 2) * sum w^2 over all parameters to the training objective "
                      "(recorded as the loss and probed)."),
    click.option("--dropout", type=float, default=None,
                 help="Dropout probability of models that have dropout [default: the model's "
                      "own]."),
    click.option("--batch-size", type=int, default=_DEFAULT.optim.batch_size, show_default=True,
                 help="Training images per step (the probes use the step's batch)."),
    click.option("--epochs", type=int, default=_DEFAULT.optim.epochs, show_default=True,
                 help="Passes over the training images per run (--max-steps may stop it sooner)."),
    click.option("--max-steps", type=int, default=None,
                 help="Stop every run after this many steps (for quick runs on a CPU)."),
    click.option("--eval-every", type=int, default=None,
                 help="Evaluate on held-out data every N steps [default: every epoch]."),
    click.option("--subset", type=int, default=None,
                 help="Train on the first N training images (N samples for the DLN)."),
    click.option("--seeds", type=CommaList(int), default=",".join(map(str, _DEFAULT.seeds)),
                 show_default=True,
                 help="Comma-separated seeds: every (model, lr) is trained once per seed (its "
                      "initialization, data order and augmentation); the BN vs no-BN verdict "
                      "then gives the per-seed range, and from 5 seeds on 95% bootstrap "
                      "intervals over seeds."),
    click.option("--seed", type=int, default=None, hidden=True,
                 callback=warn_if_given("--seed N", "--seeds N"),
                 help="One seed (the same as --seeds N)."),
    click.option("--device", default="auto", show_default=True,
                 help="cpu, cuda, cuda:N, or auto (CUDA when available)."),
    click.option("--tf32/--no-tf32", default=False, show_default=True, hidden=True,
                 callback=warn_if_given("--tf32", "--precision tf32"),
                 help="Allow TF32 matmuls/convolutions on CUDA (faster, less exact)."),
    click.option("--dataset", default=_DEFAULT.data.dataset, show_default=True,
                 help=f"{', '.join(DATASETS)} (official files in --data-dir; --download "
                      "fetches them), imagefolder:PATH (PATH/train/CLASS/*.png and "
                      "PATH/test/CLASS/, or PATH/CLASS/ with 20% held out), torchvision:NAME "
                      "(torchvision.datasets.NAME at --data-dir) or package.module:factory "
                      "(docs/training.md). Without --data-dir, cifar10 and mnist are embedded "
                      "subsets (mnist: of the official *test* set; use the lenet5 models)."),
    click.option("--precision", type=click.Choice(PRECISIONS), default="float32", show_default=True,
                 help="Training arithmetic: float32; tf32 (TF32 matmuls and convolutions on "
                      "CUDA: faster, less exact; on a CPU the same as float32); bf16 (autocast "
                      "forward, float32 weights and gradients). Probes always run in float32 "
                      "(docs/measurements.md)."),
    click.option("--memory-format", type=click.Choice(MEMORY_FORMATS),
                 default=_DEFAULT.memory_format, show_default=True,
                 help="Image models' tensor layout: auto (the faster on this machine, timed once "
                      "and cached: under load another may win, which rounds differently), or "
                      "pinned: channels_last, contiguous. Every preset pins channels_last."),
    click.option("--reproducible", is_flag=True,
                 help="Pin what makes one machine's numbers move between runs: the memory "
                      "format (channels_last unless --memory-format), torch's CPU threads "
                      "(this machine's count unless --threads) and deterministic kernels "
                      "(cuDNN without its timed autotuner); kept in the record for --resume "
                      "(docs/measurements.md section 6)."),
    click.option("--threads", type=int, default=None,
                 help="torch's CPU threads in every run [default: torch's, this machine's "
                      "cores]; kept in the record."),
    click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                 help="Folder with CIFAR-10's cifar-10-batches-py (or, with --dataset mnist, "
                      "MNIST/raw). Without it, the embedded subset is used (2,000 CIFAR-10 "
                      "training images)."),
    click.option("--download", is_flag=True,
                 help="Download the dataset into --data-dir if missing."),
    click.option("--no-verify", is_flag=True,
                 help="Read the dataset's files even if their MD5 differs from the official "
                      "release (the record says so)."),
    click.option("--crop-padding", type=int, default=_DEFAULT.data.crop_padding, show_default=True,
                 help="Random-crop augmentation with this much zero padding (0: off)."),
    click.option("--flip", is_flag=True, help="Random horizontal flip augmentation."),
    click.option("--erase-prob", type=float, default=_DEFAULT.data.erase_prob, show_default=True,
                 help="Random erasing: with this probability per image, set a rectangle of "
                      "2-33% of the image (--erase-scale; aspect 0.3-3.3) to 0 after "
                      "normalization."),
    click.option("--val-split", type=float, default=None,
                 help="Hold out this fraction of the training images (stratified by class, "
                      "seeded by --seed) as a validation split, never trained on."),
    click.option("--early-stop", type=int, default=None,
                 help="Stop a run when the validation loss has not improved for N evaluations "
                      "(needs --val-split)."),
    click.option("--width", type=float, default=_DEFAULT.model.width, show_default=True,
                 help="Multiply every channel width (small values make tiny test models)."),
    click.option("--tap", "taps", type=CommaList(), multiple=True,
                 default=taps_to_cli(_DEFAULT.recording.taps), show_default=True,
                 help="Parameter whose gradient and weight delta are stored every step "
                      f"(repeatable); '{LAST_LINEAR}' is the weight of the model's last linear "
                      "layer."),
    click.option("--no-taps", is_flag=True, help="Tap no parameter."),
    click.option("--tap-every", type=int, default=_DEFAULT.recording.tap_every, show_default=True,
                 help="Tap steps kN and kN+1 only (pairs keep consecutive differences)."),
    click.option("--tap-dtype", type=click.Choice(["float32", "float16"]),
                 default=_DEFAULT.recording.tap_dtype, show_default=True,
                 help="How the taps are stored (float16 halves their size; finer differences "
                      "than its 3 digits are lost)."),
    click.option("--probe-every", type=int, default=_DEFAULT.recording.probe.every,
                 show_default=True,
                 help="Probe loss and gradient along the gradient every N steps (0: off)."),
    click.option("--probe-range", type=CommaList(float, length=2, length_hint="LOW,HIGH"),
                 default=f"{_DEFAULT.recording.probe.low:g},{_DEFAULT.recording.probe.high:g}",
                 show_default=True,
                 help="LOW,HIGH step lengths probed (multiples of lr with --probe-scale "
                      "relative)."),
    click.option("--probe-scale", type=click.Choice(["relative", "absolute"]),
                 default=_DEFAULT.recording.probe.scale, show_default=True,
                 help="relative: --probe-range is in multiples of the run's lr (of the update, "
                      "probing along it); absolute: in step lengths as given."),
    click.option("--probe-count", type=int, default=_DEFAULT.recording.probe.count,
                 show_default=True,
                 help="Number of step lengths per probe."),
    click.option("--probe-spacing", type=click.Choice(["linear", "log"]),
                 default=_DEFAULT.recording.probe.spacing, show_default=True,
                 help="How the --probe-count step lengths fill --probe-range: evenly, or evenly "
                      "in log (needs LOW > 0)."),
    click.option("--probe-direction", type=click.Choice(["auto", "gradient", "update"]),
                 default="auto", show_default=True,
                 help="Probe along the gradient (w - eta*g, the paper's definition) or along the "
                      "step the optimizer took (w + c*(w_next - w)); auto: gradient for plain SGD "
                      "(where both are the same line), update for every other optimizer."),
    click.option("--probe-dtype", type=click.Choice(["float32", "float64"]),
                 default="float32", show_default=True,
                 help="Recompute the probe's losses and gradients in float64 (slower; exact)."),
    click.option("--probe-params", type=CommaList(), multiple=True,
                 help="Restrict the probe's norms to parameters starting with this prefix "
                      "(repeatable)."),
    click.option("--ics-every", type=int, default=0, show_default=True,
                 help="Measure internal covariate shift every N steps (0: off)."),
    click.option("--ics-layer", "ics_layers", type=CommaList(), multiple=True,
                 help="Layer whose internal covariate shift is measured (repeatable), "
                      "e.g. features.stage4.conv1."),
    click.option("--activation-every", "activation_every", type=int, default=0,
                 show_default=True,
                 help="Record per-channel activation mean/variance every N steps (0: off)."),
    click.option("--activations-every", "old_activations_every", type=int, default=None,
                 hidden=True, callback=warn_if_given("--activations-every", "--activation-every")),
    click.option("--activation-layer", "activation_layers", type=CommaList(), multiple=True,
                 help="Layer whose output statistics are recorded (repeatable), "
                      "e.g. features.stage3.norm1."),
    click.option("--save-weights-every", type=int, default=0, show_default=True,
                 help="Keep the model's weights at the start of every N-th step in the record "
                      "(0: never), for `landscape surface` and `landscape prune`."),
    click.option("--save-weights-at", type=CommaList(), multiple=True,
                 help=f"Keep the model's weights at these steps; '{END}' keeps them after the last "
                      f"step of a finished run, e.g. 0,500,{END}."),
    click.option("--flush-seconds", type=float, default=_DEFAULT.recording.flush_seconds,
                 show_default=True, help="Write recorded rows to the file at least this often."),
    click.option("--checkpoint-seconds", type=float, default=_DEFAULT.recording.checkpoint_seconds,
                 show_default=True,
                 help="Checkpoint the run in progress (for --resume) at least this often."),
]

# The axes varied, where the record goes, or which record to resume.
_OUTPUT = [
    click.option("--vary", multiple=True, metavar="NAME=V1,V2", help=VARY_HELP),
    click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path),
                 default=Path("record.h5"), show_default=True, help="The HDF5 record to write."),
    click.option("--overwrite", is_flag=True, help="Replace --out if it exists."),
    click.option("--resume", "resume_path", type=click.Path(dir_okay=False, path_type=Path),
                 default=None,
                 help="Continue the unfinished runs of this record with its own options."),
]


def record_options(command):
    """Decorate a command with every option of `landscape record`."""
    command = executor_options(command)
    for option in reversed(_OUTPUT):
        command = option(command)
    command = practice_options(command)
    command = hessian_options(command)
    for option in reversed(_OPTIONS):
        command = option(command)
    return command
