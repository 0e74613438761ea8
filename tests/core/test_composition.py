"""composition.UnlearnLoss: total = γ·aggregate(objective(forget)) + λ·retain(retain)."""

from __future__ import annotations

import math

import pytest
import torch

from baldro import aggregators, objectives, retain
from baldro.composition import UnlearnLoss
from baldro.objectives import ForgetInputs
from baldro.retain import RetainInputs

FORGET = [[0.2, 1.5, 0.7], [2.0, 0.05], [0.9, 0.1, 3.0]]
RETAIN = [[1.0, 2.0], [0.5, 0.25, 0.75]]


@pytest.mark.parametrize(("gamma", "lam"), [(1.0, 1.0), (0.5, 3.0), (2.0, 0.0)])
def test_total_is_gamma_aggregate_plus_lambda_retain(make_stats, gamma, lam):
    loss = UnlearnLoss(
        objectives.build("ga"),
        aggregators.build("dv", beta=0.5),
        retain.build("nll"),
        forget_weight=gamma,
        retain_weight=lam,
    )
    out = loss(ForgetInputs(make_stats(FORGET)), RetainInputs(make_stats(RETAIN)))
    ga = [-sum(row) / len(row) for row in FORGET]
    dv = 0.5 * math.log(sum(math.exp(v / 0.5) for v in ga) / len(ga))
    retain_nll = sum(sum(row) for row in RETAIN) / sum(len(row) for row in RETAIN)
    assert float(out.total.detach()) == pytest.approx(gamma * dv + lam * retain_nll, abs=1e-12)
    assert float(out.forget_loss) == pytest.approx(dv, abs=1e-12)
    if lam:
        assert float(out.retain_loss) == pytest.approx(retain_nll, abs=1e-12)
    else:
        assert out.retain_loss is None
    assert out.per_sample.tolist() == pytest.approx(ga, abs=1e-12)
    softmax = [math.exp(v / 0.5) for v in ga]
    assert out.weights.tolist() == pytest.approx([s / sum(softmax) for s in softmax], abs=1e-12)
    assert not out.per_sample.requires_grad and not out.weights.requires_grad and not out.forget_loss.requires_grad


def test_gradient_reaches_tokens_through_the_dro_weights(make_stats):
    """GA under an aggregator: ∂total/∂NLL_t = γ·q_i·(−1/|y_i|) for token t of sample i."""
    forget, retain_stats = make_stats(FORGET), make_stats(RETAIN)
    loss = UnlearnLoss(objectives.build("ga"), aggregators.build("group", ratio=0.5), retain.build("nll"), 0.7, 2.0)
    out = loss(ForgetInputs(forget), RetainInputs(retain_stats))
    out.total.backward()
    q = out.weights
    expected = [0.7 * float(q[i]) * (-1 / len(row)) for i, row in enumerate(FORGET) for _ in row]
    assert forget.token_nll.grad.tolist() == pytest.approx(expected, abs=1e-12)
    n_retain = sum(len(row) for row in RETAIN)
    assert retain_stats.token_nll.grad.tolist() == pytest.approx([2.0 / n_retain] * n_retain, abs=1e-12)


def test_retain_aggregator_aggregates_per_sample_retain_values(make_stats):
    loss = UnlearnLoss(
        objectives.build("ga"),
        aggregators.build("mean"),
        retain.build("nll"),
        retain_weight=1.5,
        retain_aggregator=aggregators.build("group", ratio=0.5),
    )
    out = loss(ForgetInputs(make_stats(FORGET)), RetainInputs(make_stats(RETAIN)))
    per_sample_retain = [sum(row) / len(row) for row in RETAIN]  # [1.5, 0.5]: group keeps the harder one
    assert float(out.retain_loss) == pytest.approx(max(per_sample_retain), abs=1e-12)
    ga_mean = sum(-sum(row) / len(row) for row in FORGET) / len(FORGET)
    assert float(out.total.detach()) == pytest.approx(ga_mean + 1.5 * max(per_sample_retain), abs=1e-12)


def test_likelihood_ranking_gets_the_forget_nll_automatically(make_stats):
    """group(rank_by='likelihood') ranks by the forget samples' mean NLL, which UnlearnLoss passes along."""
    stats = make_stats(FORGET)  # token-mean NLLs 0.8, 1.025, 1.333…: the first is the most likely
    loss = UnlearnLoss(objectives.build("ga"), aggregators.build("group", ratio=0.3, rank_by="likelihood"))
    out = loss(ForgetInputs(stats))
    assert out.weights.tolist() == [1.0, 0.0, 0.0]
    assert float(out.total.detach()) == pytest.approx(-0.8, abs=1e-12)


def test_missing_retain_batch_is_an_error_unless_unweighted(make_stats):
    loss = UnlearnLoss(objectives.build("ga"), aggregators.build("mean"), retain.build("nll"))
    with pytest.raises(ValueError, match="retain"):
        loss(ForgetInputs(make_stats(FORGET)))
    unweighted = UnlearnLoss(objectives.build("ga"), aggregators.build("mean"), retain.build("nll"), retain_weight=0.0)
    assert unweighted(ForgetInputs(make_stats(FORGET))).retain_loss is None
    no_retain = UnlearnLoss(objectives.build("ga"), aggregators.build("mean"))
    assert no_retain(ForgetInputs(make_stats(FORGET))).retain_loss is None


def test_aggregator_stats_are_reported(make_stats):
    loss = UnlearnLoss(objectives.build("ga"), aggregators.build("kl_radius", rho=0.1))
    out = loss(ForgetInputs(make_stats(FORGET)))
    assert out.stats["beta_star"] > 0 and math.isfinite(out.stats["beta_star"])


def test_npo_with_dv_end_to_end(make_stats):
    stats = make_stats(FORGET)
    ref = torch.tensor([-2.0, -2.5, -4.0], dtype=torch.float64)
    out = UnlearnLoss(objectives.build("npo", beta=0.1), aggregators.build("dv", beta=2.0))(
        ForgetInputs(stats, ref_logp=ref)
    )
    logp = [-sum(row) for row in FORGET]
    npo = [(2 / 0.1) * math.log1p(math.exp(0.1 * (lp - r))) for lp, r in zip(logp, ref.tolist())]
    dv = 2.0 * math.log(sum(math.exp(v / 2.0) for v in npo) / 3)
    assert float(out.total.detach()) == pytest.approx(dv, abs=1e-12)


def test_fixed_weights_on_a_subset_of_rows_is_the_weighted_sum_of_those_rows(make_stats):
    """weights fixed in advance (BalDRO-G's ranking pass, the global pre-pass): forget part = Σ_{i∈rows} w_i·ℓ_i,
    with ℓ computed only on ``rows``; the retain token mean is scaled by ``retain_share``."""
    weights = torch.tensor([0.0, 0.25, 0.75])
    kept = [FORGET[1], FORGET[2]]  # the statistics of rows 1 and 2 only
    loss = UnlearnLoss(objectives.build("ga"), aggregators.build("group", ratio=0.5), retain.build("nll"), 2.0, 3.0)
    out = loss(ForgetInputs(make_stats(kept)), RetainInputs(make_stats(RETAIN)), weights=weights,
               rows=torch.tensor([1, 2]), retain_share=0.5)
    ga = [-sum(row) / len(row) for row in kept]
    forget = 0.25 * ga[0] + 0.75 * ga[1]
    retain_nll = sum(sum(row) for row in RETAIN) / sum(len(row) for row in RETAIN)
    assert float(out.forget_loss) == pytest.approx(forget, abs=1e-12)
    assert float(out.retain_loss) == pytest.approx(0.5 * retain_nll, abs=1e-12)
    assert float(out.total.detach()) == pytest.approx(2.0 * forget + 3.0 * 0.5 * retain_nll, abs=1e-12)
    assert out.weights.tolist() == weights.tolist() and out.retain_share == 0.5


def test_plan_is_the_aggregators_weights_and_sparse_is_declared_by_the_aggregator(make_stats):
    ell = torch.tensor([0.3, 2.0, 1.0, 0.1])
    group = UnlearnLoss(objectives.build("ga"), aggregators.build("group", ratio=0.5))
    dv = UnlearnLoss(objectives.build("ga"), aggregators.build("dv", beta=0.5))
    assert group.plan(ell).tolist() == [0.0, 0.5, 0.5, 0.0]
    assert dv.plan(ell).tolist() == pytest.approx(torch.softmax(ell / 0.5, 0).tolist(), abs=1e-7)
    assert group.sparse and not dv.sparse


def test_weight_statistics_and_loss_quantiles_by_hand():
    from baldro.composition import loss_quantiles, weight_statistics

    uniform = weight_statistics(torch.full((4,), 0.25))
    assert uniform == pytest.approx({"ess": 4.0, "max_weight": 0.25, "weight_entropy": math.log(4), "kept_fraction": 1.0})
    skewed = weight_statistics(torch.tensor([0.5, 0.5, 0.0, 0.0]))
    assert skewed == pytest.approx({"ess": 2.0, "max_weight": 0.5, "weight_entropy": math.log(2), "kept_fraction": 0.5})
    q = loss_quantiles(torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0]))
    assert q == pytest.approx({"loss_q10": 1.4, "loss_q50": 3.0, "loss_q90": 4.6, "loss_mean": 3.0})
