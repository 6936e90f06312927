"""Normalization layers a model can place after its linear/conv layers.

Models ask for a layer by kind; `"none"` gives an identity so that parameter names stay the same
whether or not a model normalizes (records of BN and no-BN runs then line up name by name).

Besides BatchNorm, the kinds are the variants of Santurkar et al. (NeurIPS 2018), Section 2 and
Appendix A (see docs/normalization.md for the formulas):

- `"noisy_bn"`: BatchNorm followed by the time-varying noise of their Algorithm 1
  (`NoisyBatchNorm2d` / `NoisyBatchNorm1d`);
- `"noise"`: the noise-only control, Algorithm 1's noise with no BatchNorm before it
  (`AlgorithmOneNoiseOnly`): does the noise alone hurt a network that has no BN to absorb it?
- `"l1"`, `"l2"`, `"linf"`: ℓp normalization (`LpNorm`), which centres like BatchNorm and
  divides by the batch average ℓp norm of the activations taken *before* centring (the paper's
  Section 3.3), instead of the standard deviation; so ℓ2 normalization is not BatchNorm.

and the normalizations of the follow-ups that ask whether BatchNorm's effect is about
normalization or about the batch (torch's own layers, per sample, no batch statistics):

- `"gn"`: GroupNorm (Wu and He 2018) with `group_count(C)` groups;
- `"ln"`: LayerNorm over (C, H, W), as `nn.GroupNorm(1, C)` computes it (a γ, β per channel);
- `"in"`: InstanceNorm (per sample and channel over H, W), after conv layers only;
- `"ws"`: BatchNorm with weight standardization of the convs (Qiao et al. 2019), which
  `landscape.models.build_model` builds (`swap.standardize_convs`); `make_norm` refuses it.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from landscape.errors import ConfigError

NORM_KINDS = ("none", "bn", "noisy_bn", "l1", "l2", "linf", "noise", "gn", "ln", "in", "ws")

# The ℓp kinds and their exponent p.
_LP_KINDS = {"l1": 1.0, "l2": 2.0, "linf": math.inf}
# GroupNorm's groups: Wu and He's 32, fewer where a layer has few channels (group_count).
MAX_GROUPS = 32


def group_count(channels: int) -> int:
    """The groups of GroupNorm over `channels` channels: the largest divisor of `channels`
    that is at most MAX_GROUPS (32, Wu and He's default) and leaves at least two channels per
    group (one channel per group would be InstanceNorm); 1 where none does (1 to 3 channels,
    or a prime count above 32). 64 -> 32, 48 -> 24, 16 -> 8, 6 -> 3, 2 -> 1."""
    best = 1
    for groups in range(1, min(MAX_GROUPS, channels // 2) + 1):
        if channels % groups == 0:
            best = groups
    return best


def make_norm(kind: str, num_features: int, *, spatial: bool) -> nn.Module:
    """A normalization layer for `num_features` channels.

    `spatial` is True after a conv layer (inputs [N, C, H, W]) and False after a linear layer
    (inputs [N, C]).
    """
    if kind == "none":
        return nn.Identity()
    if kind == "bn":
        return nn.BatchNorm2d(num_features) if spatial else nn.BatchNorm1d(num_features)
    if kind == "noisy_bn":
        return NoisyBatchNorm2d(num_features) if spatial else NoisyBatchNorm1d(num_features)
    if kind == "noise":
        return AlgorithmOneNoiseOnly()
    if kind in _LP_KINDS:
        # One class for both: the statistics run over every dimension but the channels.
        return LpNorm(num_features, p=_LP_KINDS[kind])
    if kind == "gn":
        return nn.GroupNorm(group_count(num_features), num_features)
    if kind == "ln":
        # GroupNorm with one group: the statistics of nn.LayerNorm([C, H, W]), with a γ and β
        # per channel (as BatchNorm's, under BatchNorm's names) instead of per element, so the
        # layer does not fix the image size.
        return nn.GroupNorm(1, num_features)
    if kind == "in":
        if not spatial:
            raise ConfigError("InstanceNorm after a linear layer normalizes one value per "
                              "channel (its output would be its bias alone); normalize the "
                              "convs only (--norm-placement conv) or pick another kind")
        return nn.InstanceNorm2d(num_features, affine=True)
    if kind == "ws":
        raise ConfigError("ws is BatchNorm with standardized conv weights: build the model "
                          "with landscape.models.build_model(name, norm='ws')")
    raise ConfigError(f"unknown normalization {kind!r}; valid: {', '.join(NORM_KINDS)}")


# ---- Noisy BatchNorm (Algorithm 1) ---------------------------------------------------------


class AlgorithmOneNoise(NamedTuple):
    """The noise of one training forward pass of a noisy BatchNorm layer (detached copies).

    `mu`, `sigma`: [C], the per-unit parameters drawn for this step; `m`, `s`: the shape of the
    layer's input ([N, C] or [N, C, H, W]), the per-sample (and per-position) offset and scale.
    The layer's output is `s * bn(x) + m`.
    """

    mu: torch.Tensor
    sigma: torch.Tensor
    m: torch.Tensor
    s: torch.Tensor


class _AlgorithmOneMixin:
    """Adds Algorithm 1's noise to the output of the BatchNorm class it is mixed into.

    The mixin comes first in the bases so that `super().forward` is BatchNorm's forward; the
    module then has exactly BatchNorm's parameters and buffers, under BatchNorm's names.
    """

    def _init_noise(self, n_mu: float, n_sigma: float, r_mu: float, r_sigma: float) -> None:
        for name, value, low in (("n_mu", n_mu, 0.0), ("n_sigma", n_sigma, 1.0),
                                 ("r_mu", r_mu, 0.0), ("r_sigma", r_sigma, 0.0)):
            if not (math.isfinite(value) and value >= low):
                raise ConfigError(f"noisy BatchNorm {name} must be finite and >= {low}, "
                                  f"got {value}")
        self.n_mu, self.n_sigma, self.r_mu, self.r_sigma = n_mu, n_sigma, r_mu, r_sigma
        self.record_noise = False
        self.last_noise: AlgorithmOneNoise | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = super().forward(x)  # BatchNorm, affine included: (N, C) or (N, C, H, W)
        if not self.training:
            return a
        return self._add_noise(a)

    def _add_noise(self, a: torch.Tensor) -> torch.Tensor:
        # Everything comes from torch's global RNG on the activations' device, in a fixed order
        # (mu, sigma, m, s), so that restoring the RNG state replays the same noise; the probe
        # relies on this to evaluate one noisy loss at several weights. The draws use the logical
        # shape (not rand_like), so they do not depend on the memory format (channels_last).
        channels = a.shape[1]
        like = {"device": a.device, "dtype": a.dtype}
        unit = (1, channels) + (1,) * (a.dim() - 2)  # broadcasts [C] over batch and H, W
        mu = (torch.rand(channels, **like) * 2 - 1) * self.n_mu  # U(−n_μ, n_μ), per unit
        sigma = 1 + torch.rand(channels, **like) * (self.n_sigma - 1)  # U(1, n_σ), per unit
        # Per sample and, for conv layers, per position (H and W count as batch dimensions).
        m = mu.view(unit) + (torch.rand(a.shape, **like) * 2 - 1) * self.r_mu  # U(μ ± r_μ)
        s = sigma.view(unit) + torch.randn(a.shape, **like) * self.r_sigma  # N(σ, r_σ), std r_σ
        if self.record_noise:
            self.last_noise = AlgorithmOneNoise(mu.detach(), sigma.detach(), m.detach(),
                                                s.detach())
        return torch.addcmul(m, s, a)  # a ← s·a + m

    def extra_repr(self) -> str:
        return (f"{super().extra_repr()}, n_mu={self.n_mu}, n_sigma={self.n_sigma}, "
                f"r_mu={self.r_mu}, r_sigma={self.r_sigma}")


_NOISY_DOC = """BatchNorm{d} followed by the noise of Santurkar et al.'s Algorithm 1.

    In training mode, at every forward pass (one training step) and for each unit (channel) j,
    draw μ_j ~ U(−n_μ, n_μ) and σ_j ~ U(1, n_σ); then for each sample i (and, for conv layers,
    each spatial position: height and width count as batch dimensions) draw
    m ~ U(μ_j − r_μ, μ_j + r_μ) and s ~ N(σ_j, r_σ) (r_σ is the standard deviation), and output
    s·a + m, where a is the output of BatchNorm (affine γ, β included). In eval mode the
    layer is plain BatchNorm{d}. The noise does not touch the running statistics (they are
    BatchNorm's, computed from the input).

    All draws come from torch's global RNG on the input's device (order: μ, σ, m, s), so
    restoring the RNG state replays the noise. Parameters and buffers are exactly those of
    `nn.BatchNorm{d}`, under the same names; the layer is an instance of it.

    For tests and inspection: set `record_noise = True` and each training forward pass stores
    its draws in `last_noise` (an `AlgorithmOneNoise`, detached; off by default because m and s
    are as large as the activations).

    Args:
        num_features: channels C.
        n_mu, n_sigma: range of the per-unit mean and scale (defaults 0.5 and 1.25, the paper's).
        r_mu, r_sigma: per-sample spread around them (defaults 0.1, the paper's).
        **bn_options: passed to `nn.BatchNorm{d}` (eps, momentum, ...).
"""


class NoisyBatchNorm2d(_AlgorithmOneMixin, nn.BatchNorm2d):
    __doc__ = _NOISY_DOC.format(d="2d")

    def __init__(self, num_features: int, *, n_mu: float = 0.5, n_sigma: float = 1.25,
                 r_mu: float = 0.1, r_sigma: float = 0.1, **bn_options) -> None:
        nn.BatchNorm2d.__init__(self, num_features, **bn_options)
        self._init_noise(n_mu, n_sigma, r_mu, r_sigma)


class NoisyBatchNorm1d(_AlgorithmOneMixin, nn.BatchNorm1d):
    __doc__ = _NOISY_DOC.format(d="1d")

    def __init__(self, num_features: int, *, n_mu: float = 0.5, n_sigma: float = 1.25,
                 r_mu: float = 0.1, r_sigma: float = 0.1, **bn_options) -> None:
        nn.BatchNorm1d.__init__(self, num_features, **bn_options)
        self._init_noise(n_mu, n_sigma, r_mu, r_sigma)


class AlgorithmOneNoiseOnly(_AlgorithmOneMixin, nn.Identity):
    """The noise of Algorithm 1 on the layer's input, with no BatchNorm (the noise-only control).

    In training mode the output is s·x + m with exactly the draws of `NoisyBatchNorm2d`
    (μ, σ per channel, m, s per sample and position; same constants, same RNG order), applied
    to the raw activations instead of BatchNorm's output; in eval mode it is the identity. No
    parameters and no buffers, so a model with it has the parameter names of the plain model.
    """

    def __init__(self, *, n_mu: float = 0.5, n_sigma: float = 1.25, r_mu: float = 0.1,
                 r_sigma: float = 0.1) -> None:
        nn.Identity.__init__(self)
        self._init_noise(n_mu, n_sigma, r_mu, r_sigma)

    def extra_repr(self) -> str:
        return (f"n_mu={self.n_mu}, n_sigma={self.n_sigma}, r_mu={self.r_mu}, "
                f"r_sigma={self.r_sigma}")


# ---- ℓp normalization -----------------------------------------------------------------------


class LpNorm(nn.Module):
    """ℓp normalization (Santurkar et al., Section 3.3): the mean is removed as in BatchNorm,
    but the divisor is the average ℓp norm of the activations *before* the mean is removed.

    For an input x of shape [N, C] or [N, C, H, W] (any [N, C, *]), per channel j, over the
    n = N·H·W values of the channel in the batch:

        mean_j  = (1/n) Σ x
        scale_j = ((1/n) Σ |x|^p)^(1/p)      for finite p (p = 1: mean |x|; p = 2: √(E[x²]))
        scale_j = max |x|                    for p = ∞
        y       = γ_j · (x − mean_j) / (scale_j + ε) + β_j

    The paper: "we normalize by the average ℓp norm of the activations before shifting the
    mean". With p = 2 the divisor is √(var + mean²), not BatchNorm's standard deviation, so the
    ℓ2 layer equals BatchNorm only on channels whose batch mean is zero. ε is added outside the
    root, to the scale itself, so it means the same (a floor in the activations' units) for every
    p. Gradients flow through mean_j and scale_j, as in BatchNorm; a channel of zeros (scale 0)
    gets finite gradients.

    Running estimates, as BatchNorm keeps running mean/var: in training mode
    running_mean ← (1 − momentum)·running_mean + momentum·mean_j and
    running_scale ← (1 − momentum)·running_scale + momentum·scale_j (the same scale_j used to
    normalize); they start at 0 and 1. In eval mode
    y = γ·(x − running_mean)/(running_scale + ε) + β.

    Args:
        num_features: channels C.
        p: the exponent, >= 1 or math.inf (the library uses 1, 2 and ∞).
        eps: added to the scale (default 1e-5, BatchNorm's).
        momentum: of the running estimates (default 0.1, BatchNorm's).
    """

    def __init__(self, num_features: int, *, p: float, eps: float = 1e-5,
                 momentum: float = 0.1) -> None:
        super().__init__()
        if not (p >= 1):
            raise ConfigError(f"lp normalization needs p >= 1 (or inf), got {p}")
        if not (eps >= 0):
            raise ConfigError(f"lp normalization eps must be >= 0, got {eps}")
        if not (0 <= momentum <= 1):
            raise ConfigError(f"lp normalization momentum must be in [0, 1], got {momentum}")
        self.num_features = num_features
        self.p = float(p)
        self.eps = eps
        self.momentum = momentum
        self.weight = nn.Parameter(torch.ones(num_features))  # γ
        self.bias = nn.Parameter(torch.zeros(num_features))  # β
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_scale", torch.ones(num_features))

    def reset_running_stats(self) -> None:
        self.running_mean.zero_()
        self.running_scale.fill_(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 2 or x.shape[1] != self.num_features:
            raise ValueError(f"LpNorm expected input [N, {self.num_features}, *], "
                             f"got {list(x.shape)}")
        dims = [0, *range(2, x.dim())]  # everything but the channels
        unit = (1, self.num_features) + (1,) * (x.dim() - 2)
        if self.training:
            n = x.numel() // self.num_features
            if n <= 1:
                raise ValueError(f"LpNorm expected more than 1 value per channel when "
                                 f"training, got input {list(x.shape)}")
            mean = x.mean(dims)  # [C]
            centered = x - mean.view(unit)
            # The divisor is taken on x itself, before centring (the paper's wording).
            if math.isinf(self.p):
                scale = torch.linalg.vector_norm(x, ord=math.inf, dim=dims)
            else:
                # ‖x‖_p / n^(1/p) = (mean |x|^p)^(1/p); vector_norm's backward is finite (zero)
                # where the norm is zero, unlike a hand-written sqrt/pow.
                norm = torch.linalg.vector_norm(x, ord=self.p, dim=dims)
                scale = norm / n ** (1 / self.p)
            with torch.no_grad():
                self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), self.momentum)
                self.running_scale.lerp_(scale.detach().to(self.running_scale.dtype),
                                         self.momentum)
        else:
            centered = x - self.running_mean.view(unit)
            scale = self.running_scale
        y = centered / (scale + self.eps).view(unit)
        return y * self.weight.view(unit) + self.bias.view(unit)

    def extra_repr(self) -> str:
        return f"{self.num_features}, p={self.p:g}, eps={self.eps}, momentum={self.momentum}"


__all__ = ["NORM_KINDS", "MAX_GROUPS", "group_count", "make_norm", "NoisyBatchNorm2d",
           "NoisyBatchNorm1d",
           "AlgorithmOneNoise", "AlgorithmOneNoiseOnly", "LpNorm"]
