"""Pure analysis functions over recorded arrays: numpy in, numpy or frozen dataclasses out.

- ``envelope``: min/max of a per-step metric across runs, and smoothing of one curve.
- ``paper``: the paper's quantities from the gradient probe (loss band, gradient
  predictiveness, effective β).
- ``trajectory``: the course simplifications from consecutive training steps (gradient change,
  trajectory β) — not the paper's quantities.
- ``summary``: band widths and a two-model comparison table.
"""

from .envelope import Envelope, loss_envelope, smooth_curve
from .paper import ProbeBands, effective_beta, loss_band, predictiveness_band, probe_summary
from .summary import Comparison, ComparisonRow, band_width, compare_models
from .trajectory import gradient_change, trajectory_beta, trajectory_beta_from_norms

__all__ = [
    "Comparison",
    "ComparisonRow",
    "Envelope",
    "ProbeBands",
    "band_width",
    "compare_models",
    "effective_beta",
    "gradient_change",
    "loss_band",
    "loss_envelope",
    "predictiveness_band",
    "probe_summary",
    "smooth_curve",
    "trajectory_beta",
    "trajectory_beta_from_norms",
]
