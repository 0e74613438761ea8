"""Objectives against values computed by hand (issue 2, §3).

The running example: two samples with per-token NLLs [0.2, 1.5, 0.7] and [2.0, 0.05] (the second answer has a
padded third position), so summed NLLs are 2.4 and 2.05 and token means 0.8 and 1.025.
"""

from __future__ import annotations

import math

import pytest
import torch

from baldro import aggregators, objectives
from baldro.objectives import ForgetInputs

ROWS = [[0.2, 1.5, 0.7], [2.0, 0.05]]
IDK_ROWS = [[0.3, 0.4], [1.0, 0.2, 0.6]]
REF_LOGP = [-3.0, -1.0]
REF_IDK_LOGP = [-1.2, -0.9]


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def values(t: torch.Tensor) -> list[float]:
    return t.detach().tolist()


def test_ga_is_negated_token_mean_nll(make_stats):
    loss = objectives.build("ga")(ForgetInputs(make_stats(ROWS)))
    assert values(loss) == pytest.approx([-(0.2 + 1.5 + 0.7) / 3, -(2.0 + 0.05) / 2], abs=1e-12)


@pytest.mark.parametrize("beta", [0.1, 0.5, 2.0])
def test_npo_hand_computed(make_stats, beta):
    stats = make_stats(ROWS)
    loss = objectives.build("npo", beta=beta)(ForgetInputs(stats, ref_logp=torch.tensor(REF_LOGP, dtype=torch.float64)))
    log_ratio = [-2.4 - (-3.0), -2.05 - (-1.0)]  # log π_θ − log π_ref, summed over answer tokens
    expected = [-(2 / beta) * math.log(sigmoid(-beta * r)) for r in log_ratio]
    assert values(loss) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("beta", [0.1, 1.0, 3.0])
def test_npo_equals_two_ln2_over_beta_when_model_equals_reference(make_stats, beta):
    stats = make_stats(ROWS)
    ref = stats.logp_sum.detach().clone()
    loss = objectives.build("npo", beta=beta)(ForgetInputs(stats, ref_logp=ref))
    assert values(loss) == pytest.approx([2 / beta * math.log(2)] * 2, abs=1e-12)


def test_npo_tends_to_zero_as_log_ratio_goes_to_minus_infinity(make_stats):
    npo = objectives.build("npo", beta=0.1)
    stats = make_stats(ROWS)
    previous = math.inf
    for gap in [0.0, 10.0, 100.0, 1e3, 1e4]:
        loss = npo(ForgetInputs(stats, ref_logp=stats.logp_sum.detach() + gap))  # log-ratio = −gap
        assert torch.isfinite(loss).all()
        assert float(loss.detach().max()) < previous
        previous = float(loss.detach().max())
    assert previous < 1e-30


def test_npo_needs_reference(make_stats):
    with pytest.raises(ValueError, match="ref_logp"):
        objectives.build("npo")(ForgetInputs(make_stats(ROWS)))


@pytest.mark.parametrize(("beta", "delta"), [(4.5, 0.0), (2.0, 0.3)])
def test_simnpo_hand_computed(make_stats, beta, delta):
    loss = objectives.build("simnpo", beta=beta, delta=delta)(ForgetInputs(make_stats(ROWS)))
    means = [2.4 / 3, 2.05 / 2]
    expected = [-(2 / beta) * math.log(sigmoid(beta * (m - delta))) for m in means]
    assert values(loss) == pytest.approx(expected, abs=1e-12)


def satimp_token(nll: float, b1: float = 5.0, b2: float = 1.0) -> float:
    p = math.exp(-nll)
    return -(p**b1) * (1 - p) ** b2 * nll


def test_satimp_sample_granularity_hand_computed(make_stats):
    loss = objectives.build("satimp")(ForgetInputs(make_stats(ROWS)))
    expected = [sum(satimp_token(v) for v in row) / len(row) for row in ROWS]
    assert values(loss) == pytest.approx(expected, abs=1e-12)


def test_satimp_custom_exponents_hand_computed(make_stats):
    loss = objectives.build("satimp", beta1=2.0, beta2=0.5)(ForgetInputs(make_stats(ROWS)))
    expected = [sum(satimp_token(v, 2.0, 0.5) for v in row) / len(row) for row in ROWS]
    assert values(loss) == pytest.approx(expected, abs=1e-12)


def test_satimp_token_granularity_under_mean_is_batch_token_mean(make_stats):
    per_sample = objectives.build("satimp", granularity="token")(ForgetInputs(make_stats(ROWS)))
    value, _ = aggregators.build("mean")(per_sample)
    all_tokens = [v for row in ROWS for v in row]
    assert float(value.detach()) == pytest.approx(sum(satimp_token(v) for v in all_tokens) / len(all_tokens), abs=1e-12)
    # and it differs from the per-sample-mean granularity when answer lengths differ
    sample_value, _ = aggregators.build("mean")(objectives.build("satimp")(ForgetInputs(make_stats(ROWS))))
    assert abs(float(sample_value.detach()) - float(value.detach())) > 1e-4


@pytest.mark.parametrize("beta", [1.0, 2.5])
def test_wga_hand_computed(make_stats, beta):
    loss = objectives.build("wga", beta=beta)(ForgetInputs(make_stats(ROWS)))
    expected = [sum(-(math.exp(-v) ** beta) * v for v in row) / len(row) for row in ROWS]
    assert values(loss) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    ("name", "params", "weight"),
    [
        ("satimp", {}, lambda p: p**5 * (1 - p)),
        ("satimp", {"beta1": 2.0, "beta2": 3.0}, lambda p: p**2 * (1 - p) ** 3),
        ("wga", {}, lambda p: p),
        ("wga", {"beta": 2.0}, lambda p: p**2),
    ],
)
def test_token_weights_are_stop_gradient(make_stats, name, params, weight):
    """∂ℓ_t/∂NLL_t = −w_t: the weight w_t = f(p_t) is a constant for autograd (no ∂w/∂NLL term)."""
    stats = make_stats(ROWS)
    per_sample = objectives.build(name, **params)(ForgetInputs(stats))
    # ℓ_i is the mean of ℓ_t over sample i's tokens, so Σ_i |y_i|·ℓ_i = Σ_t ℓ_t
    (per_sample * stats.n_tokens.double()).sum().backward()
    p = torch.exp(-stats.token_nll.detach())
    assert torch.allclose(stats.token_nll.grad, -weight(p), atol=1e-12)


def test_idk_nll_is_refusal_token_mean_nll(make_stats):
    inputs = ForgetInputs(make_stats(ROWS), idk_stats=make_stats(IDK_ROWS))
    loss = objectives.build("idk_nll")(inputs)
    assert values(loss) == pytest.approx([(0.3 + 0.4) / 2, (1.0 + 0.2 + 0.6) / 3], abs=1e-12)


def test_idk_nll_needs_refusals(make_stats):
    with pytest.raises(ValueError, match="idk_stats"):
        objectives.build("idk_nll")(ForgetInputs(make_stats(ROWS)))


@pytest.mark.parametrize("beta", [0.1, 1.0])
def test_idk_dpo_hand_computed(make_stats, beta):
    inputs = ForgetInputs(
        make_stats(ROWS),
        ref_logp=torch.tensor(REF_LOGP, dtype=torch.float64),
        idk_stats=make_stats(IDK_ROWS),
        ref_idk_logp=torch.tensor(REF_IDK_LOGP, dtype=torch.float64),
    )
    loss = objectives.build("idk_dpo", beta=beta)(inputs)
    logp_forget = [-2.4, -2.05]
    logp_idk = [-(0.3 + 0.4), -(1.0 + 0.2 + 0.6)]
    expected = []
    for i in range(2):
        margin = (logp_idk[i] - REF_IDK_LOGP[i]) - (logp_forget[i] - REF_LOGP[i])
        expected.append(-(2 / beta) * math.log(sigmoid(beta * margin)))
    assert values(loss) == pytest.approx(expected, abs=1e-12)


def test_idk_dpo_needs_all_inputs(make_stats):
    dpo = objectives.build("idk_dpo")
    ref = torch.tensor(REF_LOGP, dtype=torch.float64)
    with pytest.raises(ValueError, match="idk_stats"):
        dpo(ForgetInputs(make_stats(ROWS), ref_logp=ref))
    with pytest.raises(ValueError, match="ref_idk_logp"):
        dpo(ForgetInputs(make_stats(ROWS), ref_logp=ref, idk_stats=make_stats(IDK_ROWS)))


def test_requirement_flags():
    assert objectives.build("npo").needs_reference and not objectives.build("npo").needs_idk
    assert objectives.build("idk_dpo").needs_reference and objectives.build("idk_dpo").needs_idk
    assert objectives.build("idk_nll").needs_idk and not objectives.build("idk_nll").needs_reference
    for name in ("ga", "simnpo", "satimp", "wga"):
        assert not objectives.build(name).needs_reference


@pytest.mark.parametrize(
    ("name", "params", "field"),
    [
        ("npo", {"beta": 0.0}, "beta"),
        ("simnpo", {"beta": -1.0}, "beta"),
        ("idk_dpo", {"beta": float("inf")}, "beta"),
        ("satimp", {"granularity": "batch"}, "granularity"),
    ],
)
def test_invalid_objective_parameters(name, params, field):
    with pytest.raises(ValueError, match=field):
        objectives.build(name, **params)
