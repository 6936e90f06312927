"""DessiLBI (landscape.optim.slbi) against hand computations and torch's Adam."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from landscape.optim import SLBI, group_shrink, slbi_param_groups, soft_threshold


def test_soft_threshold_and_group_shrink_by_hand():
    z = torch.tensor([[2.5, -0.5], [-1.75, 1.0]], dtype=torch.float64)
    assert soft_threshold(z).tolist() == [[1.5, 0.0], [-0.75, 0.0]]
    # Two filters of a 4-d weight: norms 5 (3, 4) and 0.5; the first keeps 1 − 1/5 of itself.
    w = torch.zeros(2, 1, 1, 2, dtype=torch.float64)
    w[0, 0, 0] = torch.tensor([3.0, 4.0])
    w[1, 0, 0] = torch.tensor([0.3, -0.4])
    out = group_shrink(w)
    assert torch.allclose(out[0, 0, 0], torch.tensor([3.0 * 0.8, 4.0 * 0.8], dtype=torch.float64))
    assert (out[1] == 0).all()
    assert (group_shrink(torch.zeros(3, 2, 1, 1)) == 0).all()  # no division by zero


def _one_step(param: torch.Tensor, grad: torch.Tensor, z: torch.Tensor, gamma: torch.Tensor,
              **options) -> tuple[torch.Tensor, SLBI]:
    p = nn.Parameter(param.clone())
    opt = SLBI([{"params": [p], "sparse": True, "names": ["w"]}], **options)
    opt.state[p]["z"] = z.clone()
    opt.state[p]["gamma"] = gamma.clone()
    p.grad = grad.clone()
    opt.step()
    return p.detach(), opt


def test_one_linear_step_by_hand():
    """W, z and Γ after one step of a 2x2 linear weight, every number worked out by hand:
    lr 0.5, κ 2, μ 4; W = [[1, −2], [0.5, 3]], g = [[0.2, 0.4], [−1, 0]],
    Γ = [[0, −1], [0, 0]], z = [[0.9, −1.5], [−0.2, 1.1]]."""
    w = torch.tensor([[1.0, -2.0], [0.5, 3.0]], dtype=torch.float64)
    g = torch.tensor([[0.2, 0.4], [-1.0, 0.0]], dtype=torch.float64)
    gamma = torch.tensor([[0.0, -1.0], [0.0, 0.0]], dtype=torch.float64)
    z = torch.tensor([[0.9, -1.5], [-0.2, 1.1]], dtype=torch.float64)
    new_w, opt = _one_step(w, g, z, gamma, lr=0.5, kappa=2.0, mu=4.0)
    # W − Γ = [[1, −1], [0.5, 3]]; g + (W − Γ)/μ = [[0.45, 0.15], [−0.875, 0.75]];
    # W − κ·lr·that = W − 1·that.
    assert torch.allclose(new_w, torch.tensor([[0.55, -2.15], [1.375, 2.25]],
                                              dtype=torch.float64))
    # z + (lr/μ)(W − Γ) = z + 0.125·[[1, −1], [0.5, 3]] = [[1.025, −1.625], [−0.1375, 1.475]]
    state = opt.state[opt.param_groups[0]["params"][0]]
    assert torch.allclose(state["z"], torch.tensor([[1.025, -1.625], [-0.1375, 1.475]],
                                                   dtype=torch.float64))
    # Γ = κ·soft(z, 1) = 2·[[0.025, −0.625], [0, 0.475]]
    assert torch.allclose(state["gamma"], torch.tensor([[0.05, -1.25], [0.0, 0.95]],
                                                       dtype=torch.float64))
    assert opt.gammas()["w"] is state["gamma"]


def test_one_conv_step_by_hand():
    """A 4-d weight of two 1x1x2 filters: group shrinkage of z per filter. lr 1, κ 1, μ 2."""
    w = torch.tensor([3.0, 4.0, 0.1, 0.1], dtype=torch.float64).view(2, 1, 1, 2)
    g = torch.zeros_like(w)
    z = torch.tensor([2.0, 1.0, 0.0, 0.0], dtype=torch.float64).view(2, 1, 1, 2)
    new_w, opt = _one_step(w, g, z, torch.zeros_like(w), lr=1.0, kappa=1.0, mu=2.0)
    # W ← W − (W − 0)/2 = W/2; z ← z + W/2 = [[3.5, 3], [0.05, 0.05]]
    assert torch.allclose(new_w, w / 2)
    state = opt.state[opt.param_groups[0]["params"][0]]
    z_new = torch.tensor([3.5, 3.0, 0.05, 0.05], dtype=torch.float64).view(2, 1, 1, 2)
    assert torch.allclose(state["z"], z_new)
    norm = math.hypot(3.5, 3.0)
    expected = z_new.clone()
    expected[0] *= 1 - 1 / norm
    expected[1] = 0  # ‖z_1‖ = 0.0707 < 1: the filter stays out of the support
    assert torch.allclose(state["gamma"], expected)


def test_kappa_scales_gamma_and_the_steps():
    """κ multiplies the prox (Γ = κ·prox(z)) and the W step (κ·lr), not the z step."""
    w = torch.tensor([[2.0]], dtype=torch.float64)
    g = torch.tensor([[1.0]], dtype=torch.float64)
    z = torch.tensor([[1.5]], dtype=torch.float64)
    new_w, opt = _one_step(w, g, z, torch.zeros_like(w), lr=0.1, kappa=3.0, mu=10.0)
    # W − 0.3·(1 + 0.2) = 1.64; z = 1.5 + 0.01·2 = 1.52; Γ = 3·0.52 = 1.56
    assert new_w.item() == pytest.approx(1.64)
    state = opt.state[opt.param_groups[0]["params"][0]]
    assert state["z"].item() == pytest.approx(1.52)
    assert state["gamma"].item() == pytest.approx(1.56)


def test_plain_parameters_take_sgd_steps_with_momentum_and_weight_decay():
    """A parameter without Γ: torch.optim.SGD's update with step κ·lr."""
    torch.manual_seed(0)
    a = nn.Parameter(torch.randn(5, dtype=torch.float64))
    b = nn.Parameter(a.detach().clone())
    ours = SLBI([a], lr=0.05, kappa=2.0, momentum=0.9, weight_decay=1e-2)
    ref = torch.optim.SGD([b], lr=0.1, momentum=0.9, weight_decay=1e-2)
    for _ in range(4):
        g = torch.randn(5, dtype=torch.float64)
        a.grad, b.grad = g.clone(), g.clone()
        ours.step()
        ref.step()
    assert torch.allclose(a, b, rtol=0, atol=1e-14)


def test_support_grows_from_empty_along_the_path():
    """Γ is empty at the start and its support grows along the path: on a least-squares
    problem with a sparse solution, the coefficients enter one after another, the largest
    first, and the true support is found before any null coefficient enters."""
    torch.manual_seed(0)
    x = torch.randn(200, 8, dtype=torch.float64)
    truth = torch.tensor([[4.0, -3.0, 2.0, 1.0, 0, 0, 0, 0]], dtype=torch.float64)
    y = x @ truth.T
    w = nn.Parameter(torch.zeros(1, 8, dtype=torch.float64))
    opt = SLBI([{"params": [w], "sparse": True, "names": ["w"]}], lr=0.05, kappa=1.0, mu=5.0)
    sizes, order = [], []
    for _ in range(800):
        opt.zero_grad()
        (0.5 * ((x @ w.T - y) ** 2).mean()).backward()
        opt.step()
        support = torch.nonzero(opt.gammas()["w"][0]).flatten().tolist()
        sizes.append(len(support))
        order.extend(i for i in support if i not in order)
    assert sizes[0] == 0
    assert len({int(np.argmax(np.asarray(sizes) >= k)) for k in (1, 2, 3, 4)}) >= 3
    assert order[0] == 0
    assert set(order[:4]) == {0, 1, 2, 3}


def test_adam_variant_is_torch_adam_plus_the_coupling_term():
    """The Adam variant's W update is torch.optim.Adam's (lr κ·lr) on the gradient g, plus the
    step κ·lr·(W − Γ)/μ of the coupling term; without Γ it is torch.optim.Adam's exactly."""
    torch.manual_seed(1)
    w = nn.Parameter(torch.randn(4, 3, dtype=torch.float64))
    bias = nn.Parameter(torch.randn(4, dtype=torch.float64))
    ref_w = nn.Parameter(w.detach().clone())
    ref_b = nn.Parameter(bias.detach().clone())
    lr, kappa, mu = 0.01, 2.0, 0.5
    opt = SLBI([{"params": [w], "sparse": True, "names": ["w"]}, {"params": [bias]}],
               lr=lr, kappa=kappa, mu=mu, adam=True, weight_decay=1e-3)
    ref = torch.optim.Adam([ref_w, ref_b], lr=kappa * lr, weight_decay=1e-3, foreach=False)
    # Start part-way along a path, so that Γ ≠ 0 and the coupling term matters.
    opt.state[w]["z"] = 3 * torch.randn(4, 3, dtype=torch.float64)
    opt.state[w]["gamma"] = kappa * soft_threshold(opt.state[w]["z"])
    assert (opt.gammas()["w"] != 0).sum() >= 3
    for _ in range(5):
        g_w, g_b = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, dtype=torch.float64)
        w_before, gamma = w.detach().clone(), opt.gammas()["w"].clone()
        z_before = opt.state[w]["z"].clone()
        with torch.no_grad():
            ref_w.copy_(w_before)  # Adam's step from our W (its moments depend on g only)
        w.grad, bias.grad = g_w.clone(), g_b.clone()
        ref_w.grad, ref_b.grad = g_w.clone(), g_b.clone()
        opt.step()
        ref.step()
        expected = ref_w.detach() - kappa * lr * (w_before - gamma) / mu
        assert torch.allclose(w, expected, rtol=0, atol=1e-12)
        assert torch.allclose(bias, ref_b, rtol=0, atol=1e-12)
        # z and Γ as in the SGD variant.
        z = z_before + lr / mu * (w_before - gamma)
        assert torch.allclose(opt.state[w]["z"], z, rtol=0, atol=1e-12)
        assert torch.equal(opt.gammas()["w"], kappa * soft_threshold(opt.state[w]["z"]))


def test_param_groups_from_a_model_and_state_dict_round_trip():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(8, 3))
    groups = slbi_param_groups(model, ["0.weight", "2.weight"])
    opt = SLBI(groups, lr=0.1, mu=1.0)
    assert opt.param_groups[0]["names"] == ["0.weight", "2.weight"]
    model(torch.randn(4, 1, 4, 4)).sum().backward()
    opt.step()
    again = SLBI(slbi_param_groups(model, ["0.weight", "2.weight"]), lr=0.1, mu=1.0)
    again.load_state_dict(opt.state_dict())
    for name, gamma in opt.gammas().items():
        assert torch.equal(again.gammas()[name], gamma)


@pytest.mark.parametrize("options, message", [
    ({"kappa": 0.0}, "kappa"), ({"mu": -1.0}, "mu"), ({"adam": True, "momentum": 0.9}, "betas"),
])
def test_bad_options(options, message):
    with pytest.raises(ValueError, match=message):
        SLBI([nn.Parameter(torch.zeros(2, 2))], lr=0.1, **options)


def test_gamma_needs_a_conv_or_linear_weight():
    with pytest.raises(ValueError, match="conv or linear"):
        SLBI([{"params": [nn.Parameter(torch.zeros(3))], "sparse": True}], lr=0.1)
