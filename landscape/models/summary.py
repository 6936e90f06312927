"""Layer-by-layer summary of a model: output shapes, parameters and multiply-accumulates.

`summarize(model)` runs one forward pass on a 32x32x3 input (or any `input_shape`) with forward
hooks on the leaf modules and returns a frozen `ModelSummary` of `LayerRow`s. MACs are per
image (per input) and counted for the layers that hold the arithmetic:

- Conv2d: output elements x in_channels/groups x kH x kW (the bias adds are not counted);
- Linear: in_features x out_features;
- everything else (normalization, activations, pooling, dropout, shortcuts, residual adds): 0.
  A BatchNorm in eval mode is one multiply-add per element, 1/(in_channels x kH x kW) of the
  conv before it: at most about 1.3% of the total for the CIFAR-10 models of the table
  (LeNet, VGG-A-Light), under 0.6% for the others. We leave it out, as papers' counts do.

Every parameter appears in exactly one row (a module's own parameters, counted on its first
call), so the rows add up to the model's parameter count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from landscape.errors import ConfigError
from landscape.models import MODELS, build_model, model_task

IMAGE_SHAPE = (3, 32, 32)  # a CIFAR-10 image


@dataclass(frozen=True)
class LayerRow:
    """One call of a module: its name in the model, class name, output shape without the batch
    dimension (None for a module with parameters that the forward pass never called),
    parameters and multiply-accumulates per image."""

    name: str
    layer_type: str
    output_shape: tuple[int, ...] | None
    params: int
    macs: int


@dataclass(frozen=True)
class ModelSummary:
    rows: tuple[LayerRow, ...]
    input_shape: tuple[int, ...]  # of one input: (channels, height, width) for an image
    output_shape: tuple[int, ...]  # of one input
    params: int  # sum(p.numel() for p in model.parameters())
    trainable_params: int
    macs: int  # per input (image)


def count_macs(module: nn.Module, output: torch.Tensor) -> int:
    """Multiply-accumulates per image of one call of `module` that produced `output`."""
    per_image = math.prod(output.shape[1:])
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        return per_image * (module.in_channels // module.groups) * kh * kw
    if isinstance(module, nn.Linear):
        # per_image / out_features positions (1 for a (batch, features) input)
        return per_image * module.in_features
    return 0


def summarize(model: nn.Module, *, input_shape: tuple[int, ...] = IMAGE_SHAPE) -> ModelSummary:
    """Summarize `model` on a batch of two zero inputs of `input_shape` (default 3x32x32).

    The pass runs in eval mode without gradients (two inputs so that any normalization also
    works in train mode); every module's training flag is restored afterwards.
    """
    first = next(model.parameters(), None)
    device, dtype = (first.device, first.dtype) if first is not None else ("cpu", torch.float32)
    # Each parameter belongs to the first module that holds it (tied weights count once).
    owned: set[int] = set()
    own_params: dict[nn.Module, int] = {}
    for m in model.modules():
        mine = [p for p in m.parameters(recurse=False) if id(p) not in owned]
        owned.update(id(p) for p in mine)
        own_params[m] = sum(p.numel() for p in mine)
    names = {m: n for n, m in model.named_modules()}
    rows: list[LayerRow] = []
    seen: set[nn.Module] = set()

    def hook(module: nn.Module, _inputs, output) -> None:
        if not isinstance(output, torch.Tensor):
            raise TypeError(f"{names[module]} returned {type(output).__name__}, not a tensor")
        params = 0 if module in seen else own_params[module]
        seen.add(module)
        rows.append(LayerRow(names[module] or "(model)", type(module).__name__,
                             tuple(output.shape[1:]), params, count_macs(module, output)))

    # Leaves, and any container that holds parameters of its own.
    watched = [m for m in model.modules() if not any(True for _ in m.children())
               or own_params[m]]
    handles = [m.register_forward_hook(hook) for m in watched]
    modes = {m: m.training for m in model.modules()}
    try:
        model.eval()
        with torch.no_grad():
            out = model(torch.zeros(2, *input_shape, device=device, dtype=dtype))
    finally:
        for h in handles:
            h.remove()
        for m, mode in modes.items():
            m.training = mode
    for m in watched:
        if m not in seen and own_params[m]:
            rows.append(LayerRow(names[m] or "(model)", type(m).__name__, None, own_params[m],
                                 0))
    return ModelSummary(
        rows=tuple(rows),
        input_shape=tuple(input_shape),
        output_shape=tuple(out.shape[1:]),
        params=sum(p.numel() for p in model.parameters()),
        trainable_params=sum(p.numel() for p in model.parameters() if p.requires_grad),
        macs=sum(r.macs for r in rows),
    )


def summarize_model(name: str, **options) -> ModelSummary:
    """Build the model `name` (of the table or from outside it, with `options`) on the CPU
    and summarize it.

    Image models see one image of their input shape (3x32x32 for CIFAR-10 and for models from
    outside the table, 1x28x28 for LeNet-5's MNIST); models of another task (the deep linear
    network's regression) one vector as wide as their first linear layer.
    """
    model = build_model(name, **options)
    task = model_task(name)
    if task == "image-classification":
        shape = MODELS[name].input_shape if name in MODELS else IMAGE_SHAPE
        return summarize(model, input_shape=shape)
    first = next((m for m in model.modules() if isinstance(m, nn.Linear)), None)
    if first is None:
        raise ConfigError(f"cannot tell the input of model {name!r} (task {task}) for a summary")
    return summarize(model, input_shape=(first.in_features,))
