"""The divergence-ball DRO aggregators ``kl_radius`` and ``chi2``: limits, the dual's optimality, closed forms
checked against scipy and dense grids (split from test_aggregators.py, issue 14)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from baldro import aggregators

from .aggregator_cases import LOSSES, run

# ---- kl_radius ----------------------------------------------------------------------------------------------


def kl_to_uniform(q: np.ndarray) -> float:
    return float(np.sum(q * np.log(q * q.size)))


def test_kl_radius_small_rho_is_the_mean():
    _, value, weights, _ = run("kl_radius", LOSSES, rho=1e-10)
    assert float(value) == pytest.approx(np.mean(LOSSES), abs=1e-4)
    assert torch.allclose(weights, torch.full((7,), 1 / 7, dtype=torch.float64), atol=1e-4)


def test_kl_radius_large_rho_approaches_the_max():
    # KL(Q‖uniform) ≤ log B, so ρ ≥ log 7 allows all mass on the worst sample
    agg = aggregators.build("kl_radius", rho=10.0)
    value, weights = agg(torch.tensor(LOSSES, dtype=torch.float64))
    assert float(value) == pytest.approx(max(LOSSES), abs=1e-2)
    assert float(weights.max()) > 0.99
    _, _, weights, _ = run("kl_radius", LOSSES, rho=math.log(7) - 1e-3)
    assert float(weights @ torch.tensor(LOSSES, dtype=torch.float64)) > max(LOSSES) - 0.1  # E_Q*[ℓ] near the max


@pytest.mark.parametrize("rho", [1e-3, 0.05, 0.1, 0.5, 1.5])
def test_kl_radius_beta_star_solves_the_kl_constraint(rho):
    agg = aggregators.build("kl_radius", rho=rho)
    x = torch.tensor(LOSSES, dtype=torch.float64, requires_grad=True)
    value, weights = agg(x)
    beta_star = agg.last_stats["beta_star"]
    assert math.isfinite(beta_star) and beta_star > 0
    q = torch.softmax(x.detach() / beta_star, 0)
    assert kl_to_uniform(q.numpy()) == pytest.approx(rho, rel=1e-6)
    assert float(value.detach()) >= np.mean(LOSSES)
    (grad,) = torch.autograd.grad(value, x)
    assert torch.allclose(grad, q, atol=1e-10) and torch.allclose(weights, q, atol=1e-10)
    value = value.detach()
    dv_at_beta_star = beta_star * math.log(np.mean(np.exp(np.array(LOSSES) / beta_star)))
    # the reported value is the KL-ball worst case: the dual objective at its minimum, dv(β*) + β*·ρ (strong
    # duality), which is also the primal E_Q*[ℓ] — not dv(β*) alone, which leaves out β*·ρ (issue 22, item 2)
    assert float(value) == pytest.approx(dv_at_beta_star + beta_star * rho, abs=1e-6)
    assert float(value) == pytest.approx(float(q @ x.detach()), abs=1e-12)
    assert float(value) > dv_at_beta_star + 0.5 * beta_star * rho


def test_kl_radius_beta_star_minimises_the_dual():
    rho = 0.2
    agg = aggregators.build("kl_radius", rho=rho)
    agg(torch.tensor(LOSSES, dtype=torch.float64))
    beta_star = agg.last_stats["beta_star"]
    x = np.array(LOSSES)

    def dual(b: float) -> float:
        return b * math.log(np.mean(np.exp(x / b))) + b * rho

    grid = np.exp(np.linspace(math.log(beta_star) - 3, math.log(beta_star) + 3, 2001))
    assert dual(beta_star) <= min(dual(b) for b in grid) + 1e-9


def test_kl_radius_value_is_the_worst_case_over_the_ball():
    # brute force: the worst case over a dense family of distributions in the ball sup_{KL(Q‖u)≤ρ} E_Q[ℓ] — the
    # exponential tilts softmax(ℓ/β) on a grid of β are the maximisers for their own radius, so the best tilt inside
    # the ball is the sup; the aggregate must equal it and stay within [mean, max]
    rho, x = 0.3, np.array(LOSSES)
    value = float(run("kl_radius", LOSSES, rho=rho)[1])
    best = -math.inf
    for b in np.exp(np.linspace(-6, 6, 20001)):
        q = np.exp((x - x.max()) / b)
        q /= q.sum()
        if kl_to_uniform(q) <= rho:
            best = max(best, float(q @ x))
    assert value == pytest.approx(best, abs=1e-3)
    assert np.mean(x) <= value <= np.max(x)


def test_kl_radius_equal_losses_and_huge_rho_stay_within_mean_and_max():
    for losses, rho in (([1.5, 1.5, 1.5], 0.1), (LOSSES, 50.0), (LOSSES, 1e-12)):
        value = float(run("kl_radius", losses, rho=rho)[1])
        assert np.mean(losses) - 1e-6 <= value <= max(losses) + 1e-9


def test_kl_radius_value_grows_with_rho():
    values = [float(run("kl_radius", LOSSES, rho=r)[1]) for r in (0.01, 0.1, 0.5, 1.0)]
    assert values == sorted(values) and values[0] < values[-1]


# ---- chi2 ---------------------------------------------------------------------------------------------------


def chi2_objective(q: np.ndarray, losses: np.ndarray, tau: float) -> float:
    n = losses.size
    return float(q @ losses - 0.5 * tau * n * np.sum((q - 1 / n) ** 2))


def test_chi2_large_tau_is_the_mean():
    _, value, weights, _ = run("chi2", LOSSES, tau=1e8)
    assert float(value) == pytest.approx(np.mean(LOSSES), abs=1e-6)
    assert torch.allclose(weights, torch.full((7,), 1 / 7, dtype=torch.float64), atol=1e-6)


@pytest.mark.parametrize("tau", [0.05, 0.5, 1.0, 5.0])
def test_chi2_weights_are_a_distribution_favouring_larger_losses(tau):
    x, _, weights, _ = run("chi2", LOSSES, tau=tau)
    assert (weights >= 0).all() and float(weights.sum()) == pytest.approx(1.0, abs=1e-12)
    order = torch.argsort(x.detach())
    assert (weights[order].diff() >= 0).all()  # non-decreasing in the loss
    assert float(weights[x.argmax()]) > 1 / 7 > float(weights[x.argmin()])


@pytest.mark.parametrize("tau", [0.1, 1.0, 3.0])
def test_chi2_value_matches_a_dense_grid_for_three_samples(tau):
    losses = np.array([0.4, 1.9, 1.1])
    _, value, weights, _ = run("chi2", losses.tolist(), tau=tau)
    grid = np.linspace(0.0, 1.0, 1201)
    q1, q2 = np.meshgrid(grid, grid, indexing="ij")
    q3 = 1.0 - q1 - q2
    feasible = q3 >= 0
    obj = (
        q1 * losses[0]
        + q2 * losses[1]
        + q3 * losses[2]
        - 0.5 * tau * 3 * ((q1 - 1 / 3) ** 2 + (q2 - 1 / 3) ** 2 + (q3 - 1 / 3) ** 2)
    )
    best = float(np.max(np.where(feasible, obj, -np.inf)))
    assert float(value) >= best - 1e-9  # the optimum is at least as good as every grid point
    assert float(value) == pytest.approx(best, abs=1e-4)
    assert float(value) == pytest.approx(chi2_objective(weights.numpy(), losses, tau), abs=1e-12)


def test_chi2_matches_scipy_on_a_sparse_case():
    from scipy.optimize import minimize

    losses, tau = np.array(LOSSES), 0.3
    _, value, weights, _ = run("chi2", LOSSES, tau=tau)
    assert int((weights == 0).sum()) > 0  # the small τ makes the simplex constraint active
    result = minimize(
        lambda q: -chi2_objective(q, losses, tau),
        np.full(losses.size, 1 / losses.size),
        method="SLSQP",
        bounds=[(0, 1)] * losses.size,
        constraints=[{"type": "eq", "fun": lambda q: q.sum() - 1}],
        options={"ftol": 1e-14, "maxiter": 500},
    )
    assert result.success
    assert float(value) == pytest.approx(-result.fun, abs=1e-7)
    assert weights.numpy() == pytest.approx(result.x, abs=1e-4)
