"""The Hessian probe along training: Lanczos warm-started from the previous probed step's Ritz
vectors (equal to a cold start to its tolerance, fewer products where the eigenvectors persist,
random where warm was slower, carried through a checkpoint), the deflated trace estimator
(unbiased, its standard error honest: coverage against dense float64 Hessians), and records
from before warm starts."""

import json
import math

import h5py
import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

import landscape
from landscape.config import HessianConfig, RecordConfig
from landscape.probes.curvature import LanczosResult, LanczosStarts, lanczos, top_eigenvalues
from landscape.probes.hessian import HessianProbe
from landscape.probes.trace import deflated_hutchinson, hutchinson, lanczos_trace
from landscape.store import SCHEMA_VERSION
from landscape.sweep import record, resume

from test_hessian import context_after_backward, dense_hessian, known_spectrum, tiny_network

F64 = dict(dtype=torch.float64, device=torch.device("cpu"))


def tiny_batch(embedded, n=16):
    x = (torch.from_numpy(embedded.train_x[:n]).double() - 127.5) / 127.5
    return x, torch.from_numpy(embedded.train_y[:n]) % 3


# ---- warm starts ----------------------------------------------------------------------------

def test_warm_started_probe_equals_a_cold_one_to_its_tolerance(embedded, one_thread):
    """Along three SGD steps of a tiny network (with BatchNorm), the warm-started probe's top
    eigenvalues lie within their residual bounds of the dense float64 Hessian's, as the cold
    probe's do, and the two agree to the tolerance."""
    model = tiny_network(True)
    x, y = tiny_batch(embedded)
    tol = 1e-6
    config = dict(every=1, k=2, iters=120, tol=tol, trace_samples=2, trace_method="hutchinson")
    warm = HessianProbe(HessianConfig(start="warm", **config))
    cold = HessianProbe(HessianConfig(start="random", **config))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.2)
    starts = []
    for step in range(3):
        exact = np.linalg.eigvalsh(dense_hessian(model, x, y, nn.functional.cross_entropy))[::-1]
        ctx = context_after_backward(model, nn.functional.cross_entropy, x, y)
        ctx.step = step
        w, c = warm.measure(ctx), cold.measure(ctx)
        starts.append(bool(w["warm_start"]))
        assert not c["warm_start"]
        for out in (w, c):
            assert out["converged"].item()
            values, residual = out["eigenvalues"].numpy(), out["residual"].numpy()
            assert np.all(np.abs(values - exact[:2]) <= residual + 1e-12)
            np.testing.assert_allclose(values, exact[:2], rtol=tol)
        np.testing.assert_allclose(w["eigenvalues"].numpy(), c["eigenvalues"].numpy(),
                                   rtol=2 * tol)
        optimizer.step()  # the gradient context_after_backward left: plain SGD
    assert starts[0] is False and any(starts[1:])


def rotated_spectra(steps: int, n: int = 300, angle: float = 0.05, seed: int = 0):
    """Matrices with a fixed, clustered spectrum (slow Lanczos convergence) whose eigenvectors
    turn by a small rotation from one to the next, as a Hessian does between nearby steps."""
    rng = np.random.default_rng(seed)
    values = np.concatenate([[10.0, 9.7, 9.5], np.linspace(-1.0, 9.0, n - 3)])
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    generator, _ = np.linalg.qr(rng.normal(size=(n, n)))
    skew = generator - generator.T
    turn = torch.linalg.matrix_exp(torch.from_numpy(angle * skew / np.abs(skew).max())).numpy()
    for _ in range(steps):
        yield q @ np.diag(values) @ q.T
        q = turn @ q


def test_warm_starts_take_fewer_products_where_the_eigenvectors_persist(one_thread):
    tol = 1e-6
    counts = {}
    for name, starts in (("cold", None), ("warm", LanczosStarts())):
        counts[name] = []
        for i, a in enumerate(rotated_spectra(6)):
            t = torch.from_numpy(a)
            top = top_eigenvalues(lambda v: t @ v, len(a), 1, max_steps=300, tol=tol,
                                  generator=torch.Generator().manual_seed(i), starts=starts,
                                  **F64)
            assert top.converged and top.values[0] == pytest.approx(10.0, rel=tol)
            assert top.warm_start == (starts is not None and i > 0)
            counts[name].append(top.steps)
    # The first step has nothing to start from; every later one takes fewer products warm.
    assert counts["warm"][0] == counts["cold"][0]
    assert all(w < c for w, c in zip(counts["warm"][1:], counts["cold"][1:])), counts


def fake_run(steps: int, n: int = 8) -> LanczosResult:
    """A converged Lanczos run of `steps` steps on the identity's leading block (only its
    step count and Ritz vectors matter to LanczosStarts)."""
    basis = torch.eye(n, dtype=torch.float64)[:steps]
    ritz = np.linspace(1.0, 2.0, steps)
    return LanczosResult(ritz, np.ones(steps - 1), ritz, np.ones(steps), np.zeros(steps), steps,
                         True, converged_at=steps, vectors=np.eye(steps), basis=basis)


def test_lanczos_starts_fall_back_to_random_where_warm_was_slower():
    starts = LanczosStarts()
    v0 = torch.ones(8, dtype=torch.float64)
    assert starts.choose(v0)[1] is False  # nothing yet to start from
    starts.update(fake_run(5), 1, warm=False)
    start, warm = starts.choose(v0)
    assert warm and torch.dot(start, torch.eye(8, dtype=torch.float64)[4]) > 0.99 * start.norm()
    starts.update(fake_run(4), 1, warm=True)  # warm faster: stays warm
    assert starts.choose(v0)[1] is True
    starts.update(fake_run(7), 1, warm=True)  # warm slower than the random start's 5
    start, warm = starts.choose(v0)
    assert warm is False and torch.equal(start, v0)
    starts.update(fake_run(6), 1, warm=False)  # measured anew; warm is tried again
    assert starts.choose(v0)[1] is True


def test_probe_state_survives_a_checkpoint(embedded, tmp_path, one_thread):
    """A probe rebuilt from the state_dict another probe saved (through torch.save and a
    weights-only load, as the loop's checkpoint) measures the next step bit for bit as the
    uninterrupted probe does."""
    model = tiny_network(False)
    x, y = tiny_batch(embedded)
    config = HessianConfig(every=1, k=2, iters=12, tol=1e-4, trace_samples=4, trace_deflate=6)
    uninterrupted, stopped = HessianProbe(config), HessianProbe(config)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.3)
    contexts = []
    for step in range(2):
        ctx = context_after_backward(model, nn.functional.cross_entropy, x, y)
        ctx.step = step
        contexts.append(ctx)
        optimizer.step()

    def measure(probe, ctx):  # at the context's weights (the model has moved on since)
        with torch.no_grad():
            torch._foreach_copy_(ctx.params, ctx.param_snapshot)
        return probe.measure(ctx)

    first = measure(uninterrupted, contexts[0])
    assert torch.equal(first["eigenvalues"], measure(stopped, contexts[0])["eigenvalues"])
    state = stopped.state_dict()
    assert state["starts"]["vectors"].device.type == "cpu"
    torch.save(state, tmp_path / "state.pt")
    resumed = HessianProbe(config)
    resumed.load_state_dict(torch.load(tmp_path / "state.pt", weights_only=True))
    expected = measure(uninterrupted, contexts[1])
    again = measure(resumed, contexts[1])
    assert bool(expected["warm_start"])
    for key in expected:
        assert torch.equal(expected[key], again[key]), key
    # A fresh probe (no state) starts at random, and its unconverged Ritz values differ.
    fresh = measure(HessianProbe(config), contexts[1])
    assert not bool(fresh["warm_start"])
    assert not torch.equal(fresh["eigenvalues"], expected["eigenvalues"])


# ---- the deflated trace ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def network_hessian(embedded, one_thread):
    """The dense float64 Hessian of a tiny BatchNorm network on 16 images, and a 20-step
    Lanczos basis of it."""
    model = tiny_network(True)
    x, y = tiny_batch(embedded)
    h = dense_hessian(model, x, y, nn.functional.cross_entropy)
    t = torch.from_numpy(h)
    run = lanczos(lambda v: t @ v, torch.ones(len(h), dtype=torch.float64), 20, keep_basis=True)
    return h, run


def off_diagonal_variance(a: np.ndarray) -> float:
    """Var(zᵀAz) for Rademacher z: 2 Σ_{i≠j} A_ij²."""
    return 2 * float((a ** 2).sum() - (np.diag(a) ** 2).sum())


def test_deflated_trace_is_unbiased_with_the_closed_form_variance(network_hessian):
    h, run = network_hessian
    t = torch.from_numpy(h)
    basis = run.basis
    # VᵀHV = T: the deflated part Σ α is exact.
    assert lanczos_trace(run.alpha) == pytest.approx(np.trace(basis.numpy() @ h @ basis.numpy().T),
                                                     rel=1e-10)
    est = deflated_hutchinson(lambda v: t @ v, basis, lanczos_trace(run.alpha), 4000,
                              generator=torch.Generator().manual_seed(0))
    p = np.eye(len(h)) - basis.numpy().T @ basis.numpy()
    rest = p @ h @ p
    assert abs(est.trace - np.trace(h)) < 4 * est.standard_error
    assert est.standard_error == pytest.approx(math.sqrt(off_diagonal_variance(rest) / 4000),
                                               rel=0.1)
    # The outlying eigenvalues the basis captures carried most of the plain estimator's spread.
    assert off_diagonal_variance(rest) < 0.25 * off_diagonal_variance(h)


@pytest.mark.parametrize("method", ["deflated", "hutchinson"])
def test_trace_standard_error_covers_the_exact_trace(network_hessian, method):
    """Over 400 independent estimates of 20 vectors each, the 95% t-interval estimate ± t·SE
    holds the exact trace about 95% of the time: the standard error is honest."""
    h, run = network_hessian
    t = torch.from_numpy(h)
    exact = np.trace(h)
    quantile = stats.t.ppf(0.975, 19)
    generator = torch.Generator().manual_seed(1)
    covered = []
    for _ in range(400):
        if method == "deflated":
            est = deflated_hutchinson(lambda v: t @ v, run.basis, lanczos_trace(run.alpha), 20,
                                      generator=generator)
        else:
            est = hutchinson(lambda v: t @ v, len(h), 20, generator=generator, **F64)
        covered.append(abs(est.trace - exact) <= quantile * est.standard_error)
    assert 0.92 <= np.mean(covered) <= 0.98, np.mean(covered)


def test_trace_to_a_standard_error_reaches_it_and_stays_honest(one_thread):
    """With a target relative standard error the two-stage estimator draws what the pilot's
    spread says is needed: its errors average the target, and its intervals cover. (A
    matrix whose trace needs ~100 vectors for 2%: the tiny network's, 8.8 beside a spread of
    35 per vector, would need ~40,000.)"""
    h = known_spectrum(np.random.default_rng(3).uniform(-3.0, 6.0, 120), seed=3)  # ~100 needed
    t = torch.from_numpy(h)
    exact = np.trace(h)
    generator = torch.Generator().manual_seed(2)
    errors, covered, counts = [], [], []
    for _ in range(300):
        est = hutchinson(lambda v: t @ v, len(h), 1000, generator=generator, target_se=0.02,
                         **F64)
        errors.append(est.standard_error / abs(est.trace))
        covered.append(abs(est.trace - exact) <= 1.96 * est.standard_error)
        counts.append(len(est.samples))
    assert 0.017 <= np.mean(errors) <= 0.023, np.mean(errors)
    assert 0.91 <= np.mean(covered) <= 0.98, np.mean(covered)
    assert min(counts) >= 10 and max(counts) < 1000, counts  # a pilot first, never the cap


# ---- records from before warm starts ---------------------------------------------------------

def _as_version_4(path):
    """Rewrite a fresh record the way version 4 wrote it: no hessian/warm_start, no start or
    trace options in the configuration; its last run interrupted (without a checkpoint)."""
    with h5py.File(path, "r+") as f:
        f.attrs["schema_version"] = 4
        config = json.loads(f.attrs["config"])
        for key in ("start", "trace_method", "trace_deflate", "trace_se"):
            config["hessian"].pop(key)
        f.attrs["config"] = json.dumps(config)
        for run in f["runs"].values():
            run_config = json.loads(run.attrs["config"])
            for key in ("start", "trace_method", "trace_deflate", "trace_se"):
                run_config["hessian"].pop(key)
            run.attrs["config"] = json.dumps(run_config)
            table = run["hessian"]
            del table["warm_start"]
            table.attrs["columns"] = [c for c in table.attrs["columns"] if c != "warm_start"]
        last = f["runs"][json.loads(f.attrs["run_ids"])[-1]]
        last["status"][()] = np.bytes_("interrupted")
        last["stop_reason"][()] = np.bytes_("")


def test_a_record_from_before_warm_starts_reads_and_resumes_as_it_was_measured(tmp_path,
                                                                               one_thread):
    config = dict(models=("vgg_light_bn",), lrs=(0.05,), optimizer="sgd", max_steps=6,
                  subset=64, batch_size=32, width=0.25, device="cpu", seeds=(0, 1))
    hessian = dict(every=2, k=1, iters=6, trace_samples=3)
    path, old_way = tmp_path / "r.h5", tmp_path / "old.h5"
    record(RecordConfig(hessian=HessianConfig(**hessian), **config), path)
    record(RecordConfig(hessian=HessianConfig(start="random", trace_method="hutchinson",
                                              **hessian), **config), old_way)
    _as_version_4(path)
    old = landscape.open_record(path)
    assert old.schema_version == 4
    for run_id in old.runs:
        assert not old.load(run_id).hessian.warm_start.any()
        hessian_config = RecordConfig.from_dict(old.runs[run_id].config).recording.hessian
        assert (hessian_config.start, hessian_config.trace_method) == ("random", "hutchinson")
    resume(path)  # the interrupted run restarts the way version 4 measured
    new = landscape.open_record(path)
    assert new.schema_version == SCHEMA_VERSION
    reference = landscape.open_record(old_way)
    last = list(new.runs)[-1]
    got, expected = new.load(last).hessian, reference.load(last).hessian
    assert not got.warm_start.any()
    for name, value in vars(expected).items():
        np.testing.assert_array_equal(getattr(got, name), value, err_msg=name)
