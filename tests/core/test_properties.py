"""Property tests (hypothesis) for the aggregator invariants of issue 2, §3."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from baldro import aggregators

SUP_FORMS = [
    ("dv", {}),
    ("dv", {"beta": 0.05}),
    ("dv", {"beta": 50.0}),
    ("kl_radius", {}),
    ("kl_radius", {"rho": 2.0}),
    ("chi2", {}),
    ("chi2", {"tau": 0.05}),
    ("group", {}),
    ("group", {"ratio": 0.3}),
]
ALL = [("mean", {}), ("dv", {"sign": "official"}), ("dv", {"beta": 0.05, "sign": "official"}), *SUP_FORMS]
IDS = [f"{name}-{params}" for name, params in ALL]

loss_values = st.floats(min_value=-50.0, max_value=50.0, allow_nan=False, allow_infinity=False)
# small integers make exact ties (the hard case for group) likely
loss_vectors = st.one_of(
    st.lists(loss_values, min_size=1, max_size=12),
    st.lists(st.integers(-3, 3).map(float), min_size=1, max_size=12),
)
# losses on a 1e-3 grid: a shift by up to 100 must not round their differences away (kl_radius and chi2 weights
# depend on differences only, and kl_radius is scale-free: [0, 1e-260] and [0, 1] get the same weights)
grid_vectors = st.lists(loss_values.map(lambda v: round(v, 3)), min_size=1, max_size=12)
PROPERTY = settings(max_examples=50, deadline=None)


def aggregate(name: str, params: dict, losses: list[float]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    x = torch.tensor(losses, dtype=torch.float64, requires_grad=True)
    value, weights = aggregators.build(name, **params)(x)
    (grad,) = torch.autograd.grad(value, x)
    return value.detach(), weights, grad


def tol(losses: list[float]) -> float:
    return 1e-9 * (1.0 + max(abs(v) for v in losses))


@pytest.mark.parametrize(("name", "params"), ALL, ids=IDS)
@PROPERTY
@given(losses=loss_vectors)
def test_weights_form_a_distribution_equal_to_the_gradient(name, params, losses):
    _, weights, grad = aggregate(name, params, losses)
    assert (weights >= 0).all()
    assert float(weights.sum()) == pytest.approx(1.0, abs=1e-9)
    assert torch.allclose(weights, grad, atol=1e-9)


@pytest.mark.parametrize(("name", "params"), ALL, ids=IDS)
@PROPERTY
@given(data=st.data(), losses=loss_vectors)
def test_permutation_equivariance(name, params, data, losses):
    perm = data.draw(st.permutations(range(len(losses))))
    value, weights, _ = aggregate(name, params, losses)
    value_p, weights_p, _ = aggregate(name, params, [losses[i] for i in perm])
    assert float(value_p) == pytest.approx(float(value), abs=tol(losses))
    assert torch.allclose(weights_p, weights[list(perm)], atol=1e-7)


@pytest.mark.parametrize(("name", "params"), SUP_FORMS, ids=[f"{n}-{p}" for n, p in SUP_FORMS])
@PROPERTY
@given(losses=loss_vectors)
def test_sup_forms_lie_between_mean_and_max(name, params, losses):
    value, _, _ = aggregate(name, params, losses)
    mean = sum(losses) / len(losses)
    assert mean - tol(losses) <= float(value) <= max(losses) + tol(losses)


@PROPERTY
@given(losses=loss_vectors, beta=st.floats(min_value=1e-3, max_value=1e3))
def test_official_dv_lies_between_min_and_mean(losses, beta):
    value, _, _ = aggregate("dv", {"beta": beta, "sign": "official"}, losses)
    mean = sum(losses) / len(losses)
    assert min(losses) - tol(losses) <= float(value) <= mean + tol(losses)


@PROPERTY
@given(losses=loss_vectors, beta=st.floats(min_value=1e-3, max_value=1e3))
def test_paper_dv_lies_between_mean_and_max_for_any_beta(losses, beta):
    value, weights, _ = aggregate("dv", {"beta": beta}, losses)
    mean = sum(losses) / len(losses)
    assert mean - tol(losses) <= float(value) <= max(losses) + tol(losses)
    assert float(weights.sum()) == pytest.approx(1.0, abs=1e-9)


@PROPERTY
@given(losses=grid_vectors, shift=st.floats(min_value=-100.0, max_value=100.0))
def test_shift_equivariance_of_sup_forms(losses, shift):
    """Adding a constant to every loss adds it to the value and leaves the weights unchanged."""
    for name, params in SUP_FORMS:
        value, weights, _ = aggregate(name, params, losses)
        value_s, weights_s, _ = aggregate(name, params, [v + shift for v in losses])
        assert float(value_s) == pytest.approx(
            float(value) + shift, abs=1e-7 * (1 + abs(shift) + max(map(abs, losses)))
        )
        assert torch.allclose(weights_s, weights, atol=1e-6), name
