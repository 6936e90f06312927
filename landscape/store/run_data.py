"""What reading a record returns: a run's identity and state (`RunInfo`), its arrays as small
frozen dataclasses (`RunData` and its parts), the weights it kept (`SavedWeights`) and its loss
surfaces (`SurfaceData`). No h5py: `landscape.store.loading` fills them from the file."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from landscape.store.schema import FINISHED_STATUSES, RunStatus


@dataclass(frozen=True)
class RunInfo:
    """A run's identity and state, without its arrays."""

    run_id: str
    model: str
    lr: float
    status: str  # a RunStatus value
    steps_done: int
    diverged_step: int | None
    seconds: float
    taps: tuple[str, ...]
    probed: bool
    attrs: Mapping[str, Any]
    # Why the run stopped once finished: "planned" (every planned step), "early_stop" (the
    # validation loss stopped improving) or "diverged"; None while it has not finished.
    stop_reason: str | None = None
    # The levels of the record's axes this run was trained at (axis -> value, in the axes'
    # order; empty without axes) and its full effective configuration (the flat dict of
    # RecordConfig.to_dict: the record's, with the run's model, lr and levels).
    factors: Mapping[str, Any] = field(default_factory=dict)
    config: Mapping[str, Any] = field(default_factory=dict)

    @property
    def family(self) -> str | None:
        """The network without its normalization ("vgg" for vgg_bn, "torchvision:resnet18"),
        as the run stored it; None in a record written before runs stored it (the report then
        reads it from the model table: `landscape.report.runs.LoadedRun.family`)."""
        value = self.attrs.get("family")
        return None if value is None else str(value)

    @property
    def norm(self) -> str | None:
        """The run's normalization kind ("none", "bn", "gn", ...), as the run stored it; None
        in a record written before runs stored it."""
        value = self.attrs.get("norm")
        return None if value is None else str(value)

    @property
    def complete(self) -> bool:
        """Finished as planned (a diverged run is finished too, but not complete)."""
        return self.status == RunStatus.COMPLETE

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES


@dataclass(frozen=True)
class StepData:
    step: np.ndarray  # int64 [T]
    loss: np.ndarray  # float32 [T], training-batch loss L(w_t; B_t)
    grad_norm: np.ndarray  # ‖g_t‖ over all parameters
    update_norm: np.ndarray  # ‖w_{t+1} − w_t‖
    grad_change: np.ndarray  # ‖g_t − g_{t−1}‖ (NaN at the first step)
    lr: np.ndarray  # float64 [T], learning rate of step t


@dataclass(frozen=True)
class EvalData:
    step: np.ndarray  # steps completed when evaluated
    epoch: np.ndarray  # fractional epochs completed
    train_loss: np.ndarray  # mean training-batch loss since the previous evaluation
    train_acc: np.ndarray  # accuracy on those training batches (train mode, as trained)
    test_loss: np.ndarray  # held-out cross-entropy (eval mode; no smoothing, no penalty)
    test_acc: np.ndarray
    val_loss: np.ndarray  # the same on the validation split (NaN without one)
    val_acc: np.ndarray


@dataclass(frozen=True)
class ProbeData:
    step: np.ndarray  # int64 [P]
    eta: np.ndarray  # float64 [P, K], step lengths (along −g_t; c·lr_t along the update)
    loss: np.ndarray  # [P, K], L(w; B_t) at the probed points w
    grad_diff: np.ndarray  # [P, K], ‖∇L(w_t; B_t) − ∇L(w; B_t)‖
    grad_norm: np.ndarray  # [P], ‖g_t‖ (same parameters as grad_diff)
    beta: np.ndarray  # [P], max_k grad_diff / distance
    distance: np.ndarray  # float64 [P, K], ‖w − w_t‖ (η‖g_t‖ along the gradient, c‖d_t‖ along
    #                       the update)


@dataclass(frozen=True)
class ICSData:
    step: np.ndarray  # int64 [P]
    layers: tuple[str, ...]  # the L layers measured
    distance: np.ndarray  # [P, L], ‖G − G'‖₂ (Definition 2.1)
    cosine: np.ndarray  # [P, L], cos∠(G, G')


@dataclass(frozen=True)
class ActivationData:
    step: np.ndarray  # int64 [S]
    mean: np.ndarray  # [S, C], per-channel mean of the layer's output on the training batch
    var: np.ndarray  # [S, C], per-channel variance (biased)
    # int64 [S, B]: counts of all the layer's output values on the batch in fixed bins (values
    # outside the range in the edge bins); float64 [B + 1] their edges. None in older records.
    hist: np.ndarray | None = None
    hist_edges: np.ndarray | None = None


@dataclass(frozen=True)
class HessianData:
    step: np.ndarray  # int64 [H]
    eigenvalues: np.ndarray  # float64 [H, k], the k largest eigenvalues of ∇²L(w_t; B_t)
    residual: np.ndarray  # float64 [H, k], their Lanczos residual bounds
    converged: np.ndarray  # bool [H], every one within the relative tolerance
    trace: np.ndarray  # float64 [H], Hutchinson's estimate of tr ∇²L(w_t; B_t)
    trace_se: np.ndarray  # float64 [H], its standard error
    hvps: np.ndarray  # int64 [H], Hessian-vector products taken
    lr: np.ndarray  # float64 [H], the step's learning rate

    @property
    def lambda_max(self) -> np.ndarray:
        return self.eigenvalues[:, 0]


@dataclass(frozen=True)
class HessianDensityData:
    step: np.ndarray  # int64 [D]
    nodes: np.ndarray  # float64 [D, N], quadrature nodes (NaN: none)
    weights: np.ndarray  # float64 [D, N], their weights (sum 1 per row)
    hvps: np.ndarray  # int64 [D]


@dataclass(frozen=True)
class SparsityData:
    """DessiLBI's path (landscape.probes.sparsity)."""

    step: np.ndarray  # int64 [S]
    layers: tuple[str, ...]  # the L parameters coupled to a Γ
    nonzero_fraction: np.ndarray  # [S, L], fraction of Γ's groups (filters / elements) ≠ 0
    residue: np.ndarray  # [S, L], ‖W − Γ‖²/(2μ)


@dataclass(frozen=True)
class TapData:
    step: np.ndarray  # int64 [T']
    grad: np.ndarray  # [T', *shape], g_t of the parameter
    weight_delta: np.ndarray  # [T', *shape], w_{t+1} − w_t of the parameter


@dataclass(frozen=True)
class RunData:
    info: RunInfo
    steps: StepData
    eval: EvalData
    probe: ProbeData | None
    ics: ICSData | None
    activations: Mapping[str, ActivationData]
    hessian: HessianData | None = None  # None: not measured (or a record from before)
    hessian_density: HessianDensityData | None = None


@dataclass(frozen=True)
class SavedWeights:
    """A model's state_dict as kept in a record: at the start of `step` (before its update), or
    after the last step when `step` is the run's number of steps done."""

    step: int
    state: Mapping[str, np.ndarray]  # state_dict entry -> array


@dataclass(frozen=True)
class SurfaceData:
    """A loss surface around the weights a run kept at `options["step"]`: the loss (and
    accuracy) at w + α·d₁ (+ β·d₂) for α, β on the grid `alpha` (docs/schema.md)."""

    name: str
    run_id: str
    options: Mapping[str, Any]  # step, dims, low, high, points, seed, direction, bn_params, bn,
    #                             batch, images (docs/schema.md)
    alpha: np.ndarray  # float64 [P], the coordinates along every axis
    loss: np.ndarray  # float64 [P] or [P, P] (first axis: α along d₁); NaN where not done
    accuracy: np.ndarray  # the same shape; NaN without an accuracy (regression) or not done
    done: np.ndarray  # bool, the same shape

    @property
    def complete(self) -> bool:
        return bool(self.done.all())

    @property
    def centre(self) -> tuple[int, ...] | None:
        """The grid index of the kept weights themselves (α = 0 on every axis), if on the
        grid."""
        zero = np.flatnonzero(self.alpha == 0)
        return (int(zero[0]),) * self.loss.ndim if len(zero) else None
