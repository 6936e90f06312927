"""Pruning a trained run: zero the weakest groups of one layer (or of several, each by its own
ranking) and measure held-out accuracy.

The groups are Γ's: the output filters of a conv weight, the elements of a linear weight. For a
DessiLBI run the weakest are those with the smallest Γ (‖Γ_g‖₂, the groups outside Γ's support
first), ties — every group outside the support has Γ_g = 0 — broken by the weight's own
magnitude ‖W_g‖₂; for any other run by ‖W_g‖₂ alone. Zeroing a filter zeroes its bias too
(the authors' `prune_bias`) and, when a BatchNorm follows the conv, that channel's scale and
shift: otherwise BN would turn the zeroed channel into the constant β − γ·mean/σ instead of
removing it, and a BN network would be charged for a channel it still feeds forward.

The weights are the last ones the run kept in the record (`landscape record
--save-weights-at end`), Γ the one recorded at the run's last planned step; held-out accuracy
is measured on the record's own held-out images (rebuilt from its configuration and checked
against the hashes it stored).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from landscape.config import record_config
from landscape.errors import ConfigError, RecordError
from landscape.optim import group_norms, resolve_sparse_layers
from landscape.kept.models import load_model
from landscape.instrument.user_run import check_rebuildable
from landscape.store import open_record
from landscape.sweep.plans import resolve_device
from landscape.training.tasks import make_task

BY_GAMMA = "gamma"  # the weakest groups by |Γ| (DessiLBI runs), ties by |W|
BY_WEIGHT = "weight"  # by |W| (runs of any other optimizer)


@dataclass(frozen=True)
class PruneRow:
    percent: float  # of each layer's groups asked to be zeroed
    zeroed: int  # groups zeroed (round(percent · groups / 100) per layer, summed)
    accuracy: float  # held-out accuracy after zeroing them
    loss: float  # held-out cross-entropy


@dataclass(frozen=True)
class PruneResult:
    run_id: str
    layer: str  # the parameter(s) pruned, e.g. features.conv3.weight (comma-separated)
    criterion: str  # BY_GAMMA or BY_WEIGHT
    groups: int  # filters (conv) or elements (linear), summed over the layers
    group_kind: str  # "filters", "weights", or "groups" for conv and linear layers together
    support: int  # groups in Γ's support (non-zero Γ); -1 without Γ
    weights_step: int  # the step the weights are from
    data: str  # the held-out images' description
    rows: tuple[PruneRow, ...]


def prune_order(weight: np.ndarray, gamma: np.ndarray | None) -> np.ndarray:
    """Group indices, weakest first: by ‖Γ_g‖ then ‖W_g‖ (with Γ), else by ‖W_g‖."""
    w = group_norms(torch.from_numpy(np.asarray(weight, dtype=np.float64))).numpy()
    if gamma is None:
        return np.argsort(w, kind="stable")
    g = group_norms(torch.from_numpy(np.asarray(gamma, dtype=np.float64))).numpy()
    return np.lexsort((w, g))  # the last key sorts first


def zero_groups(model: nn.Module, parameter: str, groups: np.ndarray) -> None:
    """Zero `groups` of `parameter` in place: output filters (and their biases) of a conv
    weight, elements (flat indices) of a linear weight."""
    params = dict(model.named_parameters())
    weight = params[parameter]
    with torch.no_grad():
        if weight.dim() == 4:
            index = torch.as_tensor(groups, dtype=torch.long)
            weight[index] = 0
            bias = params.get(parameter.rsplit(".", 1)[0] + ".bias")
            if bias is not None:
                bias[index] = 0
            norm = following_batchnorm(model, parameter.rsplit(".", 1)[0])
            if norm is not None:
                norm.weight[index] = 0
                norm.bias[index] = 0
        else:
            weight.view(-1)[torch.as_tensor(groups, dtype=torch.long)] = 0


def following_batchnorm(model: nn.Module, conv: str) -> nn.modules.batchnorm._BatchNorm | None:
    """The BatchNorm (with a scale and shift) that normalizes the output of module `conv`: the
    next module in registration order (the forward order of the models in the table) when it
    is one, before any other conv or linear layer."""
    found = False
    for name, module in model.named_modules():
        if name == conv:
            found = True
        elif found and isinstance(module, nn.modules.batchnorm._BatchNorm):
            return module if module.affine else None
        elif found and isinstance(module, (nn.Conv2d, nn.Linear)):
            return None
    return None


def prune_run(path: str | Path, run_id: str, layer: str | Sequence[str],
              percents: Sequence[float], *, device: str = "cpu",
              step: int | None = None) -> PruneResult:
    """Held-out accuracy of run `run_id` of the record at `path` with the weakest `percents`
    (0-100) of the groups of `layer` zeroed, one row per percentage; the weights kept at `step`
    (None: the last ones kept). Several layers ("conv3,fc1" or a list) are pruned together:
    each loses that percentage of its own groups, ranked within the layer."""
    for p in percents:
        if not 0 <= p <= 100:
            raise ConfigError(f"--fractions are percentages in [0, 100], got {p:g}")
    device = str(resolve_device(device))  # one line for a device this machine lacks
    if len(set(percents)) != len(percents):
        raise ConfigError(f"a percentage is listed twice in --fractions: "
                          f"{', '.join(f'{p:g}' for p in percents)}")
    layers = [name.strip() for name in layer.split(",")] if isinstance(layer, str) else layer
    record = open_record(path)
    if run_id not in record.runs:
        raise RecordError(f"{path} has no run {run_id!r}; its runs: {', '.join(record.runs)}")
    info = record.runs[run_id]
    model, step = load_model(record, run_id, step, device=device)
    shapes = {n: tuple(p.shape) for n, p in model.named_parameters()}
    parameters = resolve_sparse_layers(layers, shapes, info.model, option="--layer")
    is_slbi = record.sparsity(run_id) is not None
    gammas = [_gamma(record, run_id, parameter, step, info.steps_done) if is_slbi else None
              for parameter in parameters]
    check_rebuildable(record.config, path, "prune it")
    config = record_config(record).with_changes(device=device)
    task = make_task(config, torch.device(device))
    if task.identity.test_sha256 != record.data.get("test_sha256"):
        raise RecordError(f"the held-out images found now differ from those {path} was "
                          f"recorded with")
    named = dict(model.named_parameters())
    weights = [named[parameter].detach().cpu().numpy() for parameter in parameters]
    orders = [prune_order(w, g) for w, g in zip(weights, gammas)]
    rows = []
    for percent in percents:
        pruned = copy.deepcopy(model)
        zeroed = 0
        for parameter, order in zip(parameters, orders):
            n = int(round(percent * len(order) / 100))
            zero_groups(pruned, parameter, order[:n])
            zeroed += n
        loss, accuracy = task.evaluate(pruned)
        rows.append(PruneRow(float(percent), zeroed, accuracy, loss))
    support = (-1 if not is_slbi else
               sum(int((group_norms(torch.from_numpy(g)) != 0).sum()) for g in gammas))
    kinds = {"filters" if w.ndim == 4 else "weights" for w in weights}
    return PruneResult(
        run_id=run_id, layer=", ".join(parameters), criterion=BY_GAMMA if is_slbi else BY_WEIGHT,
        groups=sum(len(order) for order in orders),
        group_kind=kinds.pop() if len(kinds) == 1 else "groups",
        support=support, weights_step=step,
        data=f"{task.identity.n_test:,} held-out images of {task.identity.name}",
        rows=tuple(rows))


def _gamma(record, run_id: str, parameter: str, step: int, steps_done: int) -> np.ndarray:
    """Γ of `parameter` at the run's end, refused when the weights are from another step."""
    gamma = record.gamma(run_id).get(parameter)
    if gamma is None:
        coupled = ", ".join(record.sparsity(run_id).layers)
        raise RecordError(f"run {run_id!r} kept no Γ for {parameter} (its Γ layers: "
                          f"{coupled}; Γ is kept at the last planned step, which a run "
                          f"stopped early never reached)")
    if step != steps_done:
        raise RecordError(f"run {run_id!r} kept its last weights at step {step}, not at its "
                          f"end ({steps_done} steps) where Γ was kept; record it with "
                          f"--save-weights-at end")
    return gamma


def filters_and_support(path: str | Path, run_id: str, layer: str
                        ) -> tuple[str, np.ndarray, np.ndarray | None]:
    """A conv layer's filters (the last weights kept, [C_out, C_in, k, k]) and, for a DessiLBI
    run, which of them are in Γ's support (bool [C_out]; None for another optimizer)."""
    record = open_record(path)
    if run_id not in record.runs:
        raise RecordError(f"{path} has no run {run_id!r}; its runs: {', '.join(record.runs)}")
    model, _ = load_model(record, run_id)
    shapes = {n: tuple(p.shape) for n, p in model.named_parameters()}
    (parameter,) = resolve_sparse_layers([layer], shapes, record.runs[run_id].model,
                                         option="--filters")
    weight = dict(model.named_parameters())[parameter].detach().numpy()
    if weight.ndim != 4:
        raise ConfigError(f"--filters {layer!r}: {parameter} is not a conv weight")
    gamma = record.gamma(run_id).get(parameter)
    support = None if gamma is None else group_norms(torch.from_numpy(gamma)).numpy() != 0
    return parameter, weight, support
