"""The components behind ``compat: released``, on hand-built statistics and hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from baldro import aggregators, objectives, retain
from baldro.aggregators.group import kept_count
from baldro.composition import UnlearnLoss
from baldro.objectives import ForgetInputs
from baldro.retain import RetainInputs

from .conftest import stats_from_rows

RETAIN = [[1.0, 2.0, 3.0], [4.0], [0.5, 0.5], [2.0, 2.0, 2.0, 2.0]]


@pytest.mark.parametrize(("ratio", "batch", "ceil", "floor"), [(0.5, 5, 3, 2), (0.6, 4, 3, 2), (0.5, 4, 2, 2),
                                                              (0.3, 10, 3, 3), (0.5, 1, 1, 1), (0.1, 4, 1, 1)])
def test_kept_count_ceil_and_released_floor(ratio, batch, ceil, floor):
    assert kept_count(ratio, batch) == ceil
    assert kept_count(ratio, batch, "floor") == floor


@pytest.mark.parametrize(("ratio", "batch", "released"), [(0.7, 90, 62), (0.29, 100, 28), (0.57, 100, 56), (0.58, 50, 28)])
def test_released_floor_truncates_the_floating_point_product(ratio, batch, released):
    # the released compute_forget_group keeps max(1, int(B * ratio)): 90 * 0.7 = 62.99999999999999 keeps 62, not the
    # 63 of the exact product (issue 22, item 3); the paper-sign "ceil" keeps the exact ⌈ratio·B⌉
    assert batch * ratio < released + 1 and kept_count(ratio, batch, "floor") == released
    assert kept_count(ratio, batch) == released + 1


def test_group_floor_keeps_floor_rows():
    losses = torch.tensor([1.0, 4.0, 2.0, 3.0, 0.0])
    _, weights = aggregators.build("group", ratio=0.5, rounding="floor")(losses)
    assert weights.tolist() == [0.0, 0.5, 0.0, 0.5, 0.0]
    with pytest.raises(ValueError, match=r"invalid rounding='round'"):
        aggregators.build("group", rounding="round")


def test_retain_sequence_sum_is_the_mean_of_summed_nll():
    inputs = RetainInputs(stats_from_rows(RETAIN))
    assert float(retain.build("nll").loss(inputs).detach()) == pytest.approx(19.0 / 10)
    summed = retain.build("nll", reduction="sequence_sum")
    assert float(summed.loss(inputs).detach()) == pytest.approx((6.0 + 4.0 + 1.0 + 8.0) / 4)
    assert summed.per_sample(inputs).detach().tolist() == pytest.approx([6.0, 4.0, 1.0, 8.0])
    with pytest.raises(ValueError, match=r"invalid reduction='sum'"):
        retain.build("nll", reduction="sum")


def test_dv_over_tokens_is_the_released_drsatimp_formula():
    """forget_unit token: −σ·log mean_t exp(−ℓ_t/σ) over every answer token of the batch (official sign)."""
    rows = [[0.1, 0.4, 1.2], [0.3]]
    sigma = 0.01
    loss = UnlearnLoss(objectives.build("satimp", beta1=1.0), aggregators.build("dv", beta=sigma, sign="official"),
                       forget_unit="token")
    inputs = ForgetInputs(stats_from_rows(rows))
    value, per_sample, weights = loss.forget_part(inputs)
    tokens = [-math.exp(-v) * (1 - math.exp(-v)) * v for row in rows for v in row]
    expected = -sigma * math.log(sum(math.exp(-t / sigma) for t in tokens) / len(tokens))
    assert float(value.detach()) == pytest.approx(expected, rel=1e-9)
    soft = [math.exp(-t / sigma) for t in tokens]
    token_w = [s / sum(soft) for s in soft]
    assert weights.tolist() == pytest.approx([sum(token_w[:3]), token_w[3]], rel=1e-9)
    assert per_sample.tolist() == pytest.approx([sum(tokens[:3]) / 3, tokens[3]], rel=1e-9)
    per_sample_dv = UnlearnLoss(objectives.build("satimp", beta1=1.0),
                                aggregators.build("dv", beta=sigma, sign="official")).forget_part(inputs)[0]
    assert abs(float(per_sample_dv.detach()) - expected) > 1e-4  # over samples it is another number
    value.backward()
    grads = inputs.stats.token_nll.grad.tolist()  # ∂/∂NLL_t = w_t · ∂ℓ_t/∂NLL_t = −w_t·sg[p(1−p)]
    nll = [v for row in rows for v in row]
    assert grads == pytest.approx([-w * math.exp(-v) * (1 - math.exp(-v)) for w, v in zip(token_w, nll)], rel=1e-9)


def test_token_unit_needs_a_per_token_objective():
    with pytest.raises(ValueError, match=r"forget_unit 'token' needs an objective defined per token"):
        UnlearnLoss(objectives.build("npo"), aggregators.build("dv"), forget_unit="token")
    with pytest.raises(ValueError, match=r"invalid forget_unit='tokens'"):
        UnlearnLoss(objectives.build("satimp"), aggregators.build("dv"), forget_unit="tokens")


def test_retain_on_a_random_subset_of_kept_count_rows():
    loss = UnlearnLoss(objectives.build("ga"), aggregators.build("group", ratio=0.5, rounding="floor"),
                       retain.build("nll"), retain_rows="kept")
    forget = ForgetInputs(stats_from_rows([[1.0], [3.0], [2.0], [0.5], [4.0]]))
    out = loss(forget, RetainInputs(stats_from_rows(RETAIN)), generator=torch.Generator().manual_seed(7))
    assert int((out.weights > 0).sum()) == 2
    rows = torch.randperm(4, generator=torch.Generator().manual_seed(7))[:2].tolist()
    assert len(set(rows)) == 2
    expected = sum(sum(RETAIN[r]) for r in rows) / sum(len(RETAIN[r]) for r in rows)
    assert float(out.retain_loss) == pytest.approx(expected)
    drawn = set()
    for seed in range(40):
        idx = loss.retain_subset(out.weights, 4, torch.Generator().manual_seed(seed))
        assert idx.numel() == 2 and len(set(idx.tolist())) == 2
        drawn.update(idx.tolist())
    assert drawn == {0, 1, 2, 3}
    assert loss.retain_subset(torch.ones(9), 4).numel() == 4  # k capped at the retain batch
    assert UnlearnLoss(objectives.build("ga"), aggregators.build("mean")).retain_subset(out.weights, 4) is None


def test_kept_retain_rows_select_the_kl_tokens_too():
    from baldro.composition import select_retain

    stats = stats_from_rows(RETAIN)
    kl = torch.arange(10, dtype=torch.float64)
    picked = select_retain(RetainInputs(stats, token_kl=kl), torch.tensor([3, 0]))
    assert picked.stats.batch_size == 2 and picked.stats.n_tokens.tolist() == [4, 3]
    assert picked.token_kl.tolist() == [0.0, 1.0, 2.0, 6.0, 7.0, 8.0, 9.0]
    assert retain.build("kl").per_sample(picked).tolist() == pytest.approx([7.5, 1.0])
