"""DRO aggregators: closed forms, limits, stability and the weights-are-the-gradient contract (issue 2, §3)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.special import logsumexp

from baldro import aggregators

from .aggregator_cases import LOSSES, run

ALL_CONFIGS = [
    ("mean", {}),
    ("group", {}),
    ("group", {"ratio": 0.3}),
    ("group", {"ratio": 1.0}),
    ("dv", {}),
    ("dv", {"beta": 0.5, "sign": "official"}),
    ("kl_radius", {}),
    ("kl_radius", {"rho": 1.0}),
    ("chi2", {}),
    ("chi2", {"tau": 0.2}),
]

# ---- the contract, for every aggregator ---------------------------------------------------------------------


@pytest.mark.parametrize(("name", "params"), ALL_CONFIGS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_weights_are_the_gradient_detached_nonnegative_and_sum_to_one(name, params, dtype):
    _, value, weights, grad = run(name, LOSSES, dtype=dtype, **params)
    assert value.dim() == 0 and weights.shape == (len(LOSSES),)
    assert not weights.requires_grad and weights.grad_fn is None
    assert (weights >= 0).all()
    assert float(weights.sum()) == pytest.approx(1.0, abs=1e-6)
    assert torch.allclose(weights.double(), grad.double(), atol=1e-6)


@pytest.mark.parametrize(("name", "params"), ALL_CONFIGS)
def test_uniform_difficulty_gives_uniform_weights_and_the_mean(name, params):
    """The paper's edge case: when every sample is equally hard, every aggregator reduces to the plain mean."""
    _, value, weights, grad = run(name, [1.3] * 6, **params)
    assert float(value.detach()) == pytest.approx(1.3, abs=1e-12)
    assert torch.allclose(weights, torch.full((6,), 1 / 6, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(grad, weights, atol=1e-12)


@pytest.mark.parametrize(("name", "params"), ALL_CONFIGS)
def test_single_sample_batch_is_that_sample(name, params):
    _, value, weights, _ = run(name, [2.7], **params)
    assert float(value) == pytest.approx(2.7, abs=1e-12)
    assert weights.tolist() == [1.0]


@pytest.mark.parametrize("name", aggregators.names())
@pytest.mark.parametrize("bad", [torch.zeros(0), torch.zeros(2, 3), torch.tensor(1.0)])
def test_rejects_non_vector_losses(name, bad):
    with pytest.raises(ValueError, match="1-D"):
        aggregators.build(name)(bad)


@pytest.mark.parametrize(("name", "params"), ALL_CONFIGS)
def test_half_precision_losses(name, params):
    value, weights = aggregators.build(name, **params)(torch.tensor(LOSSES, dtype=torch.bfloat16))
    assert torch.isfinite(value) and torch.isfinite(weights).all()
    assert float(weights.float().sum()) == pytest.approx(1.0, abs=1e-2)


# ---- mean ---------------------------------------------------------------------------------------------------


def test_mean():
    _, value, weights, _ = run("mean", LOSSES)
    assert float(value) == pytest.approx(sum(LOSSES) / len(LOSSES), abs=1e-12)
    assert torch.allclose(weights, torch.full((7,), 1 / 7, dtype=torch.float64))


# ---- dv -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("beta", [0.3, 2.0, 10.0])
def test_dv_gradient_is_softmax(beta):
    x, _, weights, grad = run("dv", LOSSES, beta=beta)
    assert torch.allclose(grad, torch.softmax(x.detach() / beta, 0), atol=1e-12)
    x, _, weights, grad = run("dv", LOSSES, beta=beta, sign="official")
    assert torch.allclose(grad, torch.softmax(-x.detach() / beta, 0), atol=1e-12)


def test_dv_hand_computed():
    losses, beta = [1.0, 2.0, 4.0], 2.0
    paper = beta * math.log((math.exp(1 / 2) + math.exp(2 / 2) + math.exp(4 / 2)) / 3)
    official = -beta * math.log((math.exp(-1 / 2) + math.exp(-2 / 2) + math.exp(-4 / 2)) / 3)
    assert float(run("dv", losses, beta=beta)[1]) == pytest.approx(paper, abs=1e-12)
    assert float(run("dv", losses, beta=beta, sign="official")[1]) == pytest.approx(official, abs=1e-12)
    # paper = soft max ≥ mean ≥ soft min = official
    assert official < sum(losses) / 3 < paper


def test_dv_default_is_paper_sign_with_beta_two():
    agg = aggregators.build("dv")
    assert agg.beta == 2.0 and agg.sign == "paper"
    x = torch.tensor(LOSSES, dtype=torch.float64)
    _, w = agg(x)
    assert int(w.argmax()) == int(x.argmax())  # the still-remembered sample gets the most weight


@pytest.mark.parametrize("sign", ["paper", "official"])
def test_dv_large_beta_is_the_mean(sign):
    # β·log mean exp(ℓ/β) = mean + var/(2β) + O(β⁻²): within 1e-6 of the mean for O(1) losses at β = 1e6
    losses = [0.5, 1.0, 2.0, 3.0, 1.5]
    _, value, weights, _ = run("dv", losses, beta=1e6, sign=sign)
    assert float(value) == pytest.approx(np.mean(losses), abs=1e-6)
    assert torch.allclose(weights, torch.full((5,), 1 / 5, dtype=torch.float64), atol=1e-6)


@pytest.mark.parametrize("sign", ["paper", "official"])
@pytest.mark.parametrize("beta", [1e-3, 0.1, 1.0, 30.0, 1e3, 1e6])
def test_dv_float32_matches_float64_closed_form_at_every_beta(sign, beta):
    """float32 losses (what training produces) keep the value to float32 precision even where β multiplies a tiny
    log-mean-exp: at β = 1e6 the value is the mean + var/(2β), not the mean plus rounding noise times β."""
    losses = [0.5, 1.0, 2.0, 3.0, 1.5]
    s = 1.0 if sign == "paper" else -1.0
    exact = s * beta * (logsumexp(s * np.array(losses) / beta) - math.log(len(losses)))
    _, value, weights, grad = run("dv", losses, dtype=torch.float32, beta=beta, sign=sign)
    assert float(value) == pytest.approx(exact, abs=2e-6)
    assert torch.allclose(weights, grad, atol=1e-6)


def test_dv_small_beta_approaches_max_and_official_min():
    _, value, weights, _ = run("dv", LOSSES, beta=1e-3)
    assert float(value) == pytest.approx(max(LOSSES), abs=1e-2)
    assert int(weights.argmax()) == LOSSES.index(max(LOSSES)) and float(weights.max()) > 0.999
    _, value, weights, _ = run("dv", LOSSES, beta=1e-3, sign="official")
    assert float(value) == pytest.approx(min(LOSSES), abs=1e-2)
    assert int(weights.argmax()) == LOSSES.index(min(LOSSES)) and float(weights.max()) > 0.999


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("sign", ["paper", "official"])
@pytest.mark.parametrize("beta", [1e-3, 1e-1, 2.0])
def test_dv_finite_for_huge_losses_and_small_beta(dtype, sign, beta):
    losses = [1e4, -1e4, 0.0, 5e3, 1e4 - 1.0]
    x = torch.tensor(losses, dtype=dtype, requires_grad=True)
    value, weights = aggregators.build("dv", beta=beta, sign=sign)(x)
    (grad,) = torch.autograd.grad(value, x)
    assert torch.isfinite(value) and torch.isfinite(weights).all() and torch.isfinite(grad).all()
    held = x.detach().double()  # the losses as the dtype holds them (bfloat16 stores 1e4 as 9984)
    target = float(held.max() if sign == "paper" else held.min())
    assert abs(float(value.detach()) - target) <= beta * math.log(len(losses)) + 0.1  # soft max/min within β·log B


# ---- group --------------------------------------------------------------------------------------------------


def test_group_ratio_one_is_the_mean():
    _, value, weights, _ = run("group", LOSSES, ratio=1.0)
    assert float(value) == pytest.approx(np.mean(LOSSES), abs=1e-12)
    assert torch.allclose(weights, torch.full((7,), 1 / 7, dtype=torch.float64))


def test_group_half_of_four():
    _, value, weights, grad = run("group", [1.0, 4.0, 2.0, 3.0], ratio=0.5)
    assert float(value) == 3.5
    assert grad.tolist() == [0.0, 0.5, 0.0, 0.5]
    assert weights.tolist() == [0.0, 0.5, 0.0, 0.5]


def test_group_default_ratio_is_half():
    assert aggregators.build("group").ratio == 0.5


@pytest.mark.parametrize(
    ("ratio", "batch", "kept"), [(0.3, 10, 3), (0.5, 7, 4), (0.01, 5, 1), (0.7, 10, 7), (1.0, 3, 3)]
)
def test_group_keeps_ceil_ratio_times_batch(ratio, batch, kept):
    losses = [float(i) for i in range(batch)]
    _, value, weights, _ = run("group", losses, ratio=ratio)
    assert int((weights > 0).sum()) == kept
    assert float(value) == pytest.approx(np.mean(sorted(losses)[-kept:]), abs=1e-12)
    assert aggregators.group_select(torch.tensor(losses), ratio).tolist() == list(range(batch - kept, batch))


def test_group_ties_are_deterministic_and_symmetric():
    """Ties at the cut share the remaining weight equally: same result every call and under any permutation."""
    losses = [5.0, 2.0, 2.0, 1.0, 2.0, 0.0]  # keep 3: the 5 and two of the three 2s
    _, value, weights, grad = run("group", losses, ratio=0.5)
    assert float(value) == pytest.approx((5.0 + 2.0 + 2.0) / 3, abs=1e-12)
    assert weights.tolist() == pytest.approx([1 / 3, 2 / 9, 2 / 9, 0.0, 2 / 9, 0.0], abs=1e-12)
    assert torch.allclose(grad, weights)
    for _ in range(3):
        assert torch.equal(run("group", losses, ratio=0.5)[2], weights)
    perm = torch.tensor([3, 0, 5, 2, 4, 1])
    _, value_p, weights_p, _ = run("group", [losses[i] for i in perm], ratio=0.5)
    assert float(value_p) == pytest.approx(float(value), abs=1e-12)
    assert torch.equal(weights_p, weights[perm])
    # group_select breaks the tie by batch index, also deterministically
    assert aggregators.group_select(torch.tensor(losses), 0.5).tolist() == [0, 1, 2]


def test_group_rank_by_likelihood_keeps_lowest_nll():
    losses = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64, requires_grad=True)
    nll = torch.tensor([3.0, 0.5, 2.0, 1.0], dtype=torch.float64)
    value, weights = aggregators.build("group", ratio=0.5, rank_by="likelihood")(losses, nll=nll)
    assert weights.tolist() == [0.0, 0.5, 0.0, 0.5]  # the two most likely samples (NLL 0.5 and 1.0)
    assert float(value.detach()) == pytest.approx((0.2 + 0.4) / 2, abs=1e-12)
    (grad,) = torch.autograd.grad(value, losses)
    assert grad.tolist() == [0.0, 0.5, 0.0, 0.5]


def test_group_rank_by_likelihood_without_nll_is_a_clear_error():
    agg = aggregators.build("group", rank_by="likelihood")
    with pytest.raises(ValueError, match=r"rank_by='likelihood' needs the per-sample NLL.*nll="):
        agg(torch.tensor([1.0, 2.0]))


def test_group_rank_by_loss_ignores_nll():
    losses = torch.tensor([1.0, 4.0, 2.0, 3.0])
    _, weights = aggregators.build("group")(losses, nll=torch.tensor([0.0, 9.0, 0.0, 9.0]))
    assert weights.tolist() == [0.0, 0.5, 0.0, 0.5]


# ---- parameter validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "params", "pattern"),
    [
        ("dv", {"beta": 0.0}, r"beta=0\.0.*> 0"),
        ("dv", {"beta": -2}, r"beta=-2.*> 0"),
        ("dv", {"beta": float("nan")}, r"beta=nan"),
        ("dv", {"sign": "soft"}, r"sign='soft'.*paper, official"),
        ("group", {"ratio": 0.0}, r"ratio=0\.0.*\(0, 1\]"),
        ("group", {"ratio": 1.5}, r"ratio=1\.5.*\(0, 1\]"),
        ("group", {"rank_by": "nll"}, r"rank_by='nll'.*loss, likelihood"),
        ("kl_radius", {"rho": 0.0}, r"rho=0\.0.*> 0"),
        ("kl_radius", {"rho": -1.0}, r"rho=-1\.0.*> 0"),
        ("chi2", {"tau": 0.0}, r"tau=0\.0.*> 0"),
        ("dv", {"temperature": 1.0}, r"'temperature'.*beta, sign"),
        ("group", {"beta": 1.0}, r"'beta'.*ratio, rank_by"),
        ("mean", {"beta": 1.0}, r"'beta'.*none"),
        ("cvar", {}, r"'cvar'.*chi2, dv, group, kl_radius, mean"),
    ],
)
def test_invalid_parameters_raise_value_error_naming_them(name, params, pattern):
    with pytest.raises(ValueError, match=pattern):
        aggregators.build(name, **params)


def test_parameter_names_are_exactly_as_specified():
    configs = {name: set(aggregators.build(name).config()) for name in aggregators.names()}
    assert configs == {
        "mean": set(),
        "group": {"ratio", "rank_by", "rounding"},
        "dv": {"beta", "sign"},
        "kl_radius": {"rho"},
        "chi2": {"tau"},
    }


def test_group_ties_in_likelihood_share_the_weight():
    losses = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)
    nll = torch.tensor([1.0, 1.0, 1.0, 5.0], dtype=torch.float64)  # three equally likely samples, keep 2
    value, weights = aggregators.build("group", ratio=0.5, rank_by="likelihood")(losses, nll=nll)
    assert weights.tolist() == pytest.approx([1 / 3, 1 / 3, 1 / 3, 0.0], abs=1e-12)
    assert float(value) == pytest.approx((0.1 + 0.2 + 0.3) / 3, abs=1e-12)


@pytest.mark.parametrize("losses", [[float("nan"), float("nan"), 1.0], [float("nan"), 1.0, 2.0, 0.5]])
def test_group_propagates_nan_losses(losses):
    """A NaN loss ranks hardest and is kept, so the value is NaN (not silently dropped) and the weights stay valid."""
    value, weights = aggregators.build("group", ratio=0.5)(torch.tensor(losses))
    assert math.isnan(float(value))
    assert float(weights.sum()) == pytest.approx(1.0) and (weights >= 0).all()
    assert all(float(weights[i]) > 0 for i, v in enumerate(losses) if math.isnan(v))
