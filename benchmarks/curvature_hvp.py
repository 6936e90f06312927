"""One Hessian-vector product three ways, interleaved in one process: the probe's double
backward (`HessianOperator`), `torch.func` forward-over-reverse (`jvp(grad(loss))` with
`functional_call`), and the latter under `vmap` over --vectors vectors (per product). Prints the
relative difference of the first two and the milliseconds of each repeat.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/curvature_hvp.py --models vgg_light,vgg_light_bn
"""

from __future__ import annotations

import argparse
import copy
import time

import torch
from torch import nn
from torch.func import functional_call, grad, jvp, vmap

from curvature import batch, warm_model  # benchmarks/curvature.py, beside this file
from landscape.probes.curvature import HessianOperator


def functional_hvp(model: nn.Module, x, y, names):
    """v -> Hv by jvp(grad): BatchNorm on batch statistics without its in-place running-
    statistics update (the same function in training mode; torch.func cannot mutate them)."""
    fm = copy.deepcopy(model)
    for m in fm.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.track_running_stats, m.running_mean, m.running_var = False, None, None
    at = {n: p.detach() for n, p in model.named_parameters() if n in names}
    g = grad(lambda p: nn.functional.cross_entropy(functional_call(fm, p, (x,)), y))
    return lambda v: jvp(g, (at,), (v,))[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=lambda s: s.split(","), default=["vgg_light"])
    parser.add_argument("--vectors", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--warm-steps", type=int, default=5)
    args = parser.parse_args()
    device = torch.device("cpu")
    x, y = batch(128, device)
    for name in args.models:
        model = warm_model(name, device, args.warm_steps, 128)
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        names = [n for n, _ in named]
        hvp = functional_hvp(model, x, y, names)
        op = HessianOperator(nn.functional.cross_entropy(model(x), y), [p for _, p in named])
        flat = torch.randn(op.n)
        v = {n: t.view(p.shape) for (n, p), t in zip(named, flat.split(op.sizes))}
        a, b = op(flat), torch.cat([hvp(v)[n].reshape(-1) for n in names])
        print(name, "relative difference", float((a - b).norm() / a.norm()))
        k = args.vectors
        many = {n: torch.randn(k, *p.shape) for n, p in named}
        batched = vmap(hvp)
        times: dict[str, list[int]] = {"double backward": [], "jvp(grad)": [],
                                       f"vmap {k} / {k}": []}
        for _ in range(args.repeats):
            for label, fn, per in (("double backward", lambda: op(flat), 1),
                                   ("jvp(grad)", lambda: hvp(v), 1),
                                   (f"vmap {k} / {k}", lambda: batched(many), k)):
                start = time.perf_counter()
                fn()
                times[label].append(round(1000 * (time.perf_counter() - start) / per))
        print(name, "ms per product:", times)


if __name__ == "__main__":
    main()
