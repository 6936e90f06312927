"""The Hessian of the training objective at a training step: its top eigenvalues and trace
(`HessianProbe`, table "hessian") and its spectral density (`HessianDensityProbe`, table
"hessian_density").

Same contract as the gradient probe (landscape.probes.gradient): at w_t, on the step's own
batch B_t, with BatchNorm in training mode (batch statistics, so the Hessian includes how the
batch's mean and variance move with the weights) and the step's random state replayed, so that
dropout masks and injected noise are those of the step. The objective is the loop's `loss_fn`,
penalties included. Afterwards the weights, gradients, BatchNorm running statistics and random
state are restored bit for bit, so a probed run trains exactly as an unprobed one.

Random vectors come from a generator seeded by the step (reproducible, and the training
random state is not drawn from). Along training, each Lanczos run starts from the previous
probed step's Ritz vectors (`landscape.probes.curvature.LanczosStarts`), state the probe
carries from step to step and through a checkpoint (`state_dict` / `load_state_dict`), so that
a resumed run probes exactly as an uninterrupted one. The trace is deflated by the Lanczos
basis (`landscape.probes.trace`). The probe syncs with the host once per Lanczos step: it is
meant for every tenth step or so, not every step.
"""

from __future__ import annotations

import torch

from landscape.config.hessian import HessianConfig
from landscape.training.contracts import StepContext
from landscape.probes.curvature import (HessianOperator, LanczosStarts, slq_density,
                                        top_eigenvalues)
from landscape.probes.trace import deflated_hutchinson, hutchinson, lanczos_trace
from landscape.probes._restore import StepState
from landscape.store.schema import TableKind

# Added to the step to seed the density's vectors, so that they differ from the eigenvalue
# probe's at the same step.
_DENSITY_SEED_OFFSET = 1 << 32


def step_generator(step: int, offset: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(step + offset)


def hessian_operator(ctx: StepContext) -> HessianOperator:
    """The Hessian of L(·; B_t) at the parameters' current values, the step's random state
    replayed for its forward pass (which updates BatchNorm's running statistics: restore them)."""
    loss = ctx.batch_loss()
    return HessianOperator(loss, ctx.params)


class HessianProbe:
    """Top-k eigenvalues (Lanczos) and trace (Hutchinson, deflated or plain) of ∇²L(w_t; B_t)
    every `config.every` steps.

    Per probed step (device/host tensors): `eigenvalues` float64 [k] (largest first; NaN where
    Lanczos stopped on an invariant space smaller than k), `residual` [k] (their residual
    bounds: |λ − θ| ≤ residual for some eigenvalue λ), `converged` (every one within `tol`
    relative), `warm_start` (Lanczos started from the previous probed step's Ritz vectors),
    `trace`, `trace_se` (standard error), `hvps` (Hessian-vector products taken) and `lr` (the
    step's learning rate, for the 2/η line).
    """

    name = TableKind.HESSIAN
    phase = "before_update"

    def __init__(self, config: HessianConfig) -> None:
        self.config = config
        self.starts = LanczosStarts() if config.start == "warm" else None

    def due(self, step: int) -> bool:
        return self.config.every > 0 and step % self.config.every == 0

    def measure(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        config = self.config
        saved = StepState(ctx)
        op = hessian_operator(ctx)
        generator = step_generator(ctx.step)
        deflate = config.trace_method == "deflated"
        top = top_eigenvalues(op, op.n, config.k, max_steps=config.iters, tol=config.tol,
                              generator=generator, dtype=op.dtype, device=op.device,
                              starts=self.starts,
                              min_steps=config.trace_deflate if deflate else 0,
                              keep_basis=deflate)
        if deflate:
            trace = deflated_hutchinson(op, top.lanczos.basis, lanczos_trace(top.lanczos.alpha),
                                        config.trace_samples, generator=generator,
                                        target_se=config.trace_se)
        else:
            trace = hutchinson(op, op.n, config.trace_samples, generator=generator,
                               dtype=op.dtype, device=op.device, target_se=config.trace_se)
        hvps = op.count
        del op  # frees the gradient's graph before training goes on
        saved.restore(ctx)
        return {
            "eigenvalues": torch.from_numpy(top.values),
            "residual": torch.from_numpy(top.residual),
            "converged": torch.tensor(top.converged),
            "warm_start": torch.tensor(top.warm_start),
            "trace": torch.tensor(trace.trace, dtype=torch.float64),
            "trace_se": torch.tensor(trace.standard_error, dtype=torch.float64),
            "hvps": torch.tensor(hvps, dtype=torch.int64),
            "lr": torch.tensor(float(ctx.lr), dtype=torch.float64),
        }

    def state_dict(self) -> dict:
        """What the probe carries from one probed step to the next (the Lanczos starts), for
        a checkpoint: CPU tensors and plain values."""
        return {"starts": self.starts.state_dict() if self.starts is not None else None}

    def load_state_dict(self, state: dict) -> None:
        if self.starts is not None and state.get("starts") is not None:
            self.starts.load_state_dict(state["starts"])


class HessianDensityProbe:
    """The spectral density of ∇²L(w_t; B_t) at the steps `config.density_at`, by stochastic
    Lanczos quadrature: `nodes` and `weights` float64 [density_vectors × density_iters] (the
    weights sum to 1; see `landscape.probes.curvature.slq_density`), and `hvps`."""

    name = TableKind.HESSIAN_DENSITY
    phase = "before_update"

    def __init__(self, config: HessianConfig) -> None:
        self.config = config
        self.steps = frozenset(config.density_at)

    def due(self, step: int) -> bool:
        return step in self.steps

    def measure(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        config = self.config
        saved = StepState(ctx)
        op = hessian_operator(ctx)
        density = slq_density(op, op.n, steps=config.density_iters,
                              vectors=config.density_vectors,
                              generator=step_generator(ctx.step, _DENSITY_SEED_OFFSET),
                              dtype=op.dtype, device=op.device)
        hvps = op.count
        del op
        saved.restore(ctx)
        return {
            "nodes": torch.from_numpy(density.nodes),
            "weights": torch.from_numpy(density.weights),
            "hvps": torch.tensor(hvps, dtype=torch.int64),
        }


def hessian_probes(config: HessianConfig) -> list:
    """The probes `config` asks for (none when it is off)."""
    probes: list = []
    if config.every:
        probes.append(HessianProbe(config))
    if config.density_at:
        probes.append(HessianDensityProbe(config))
    return probes
