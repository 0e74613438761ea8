"""Hardness ranking is an objective's property: BalDRO-G ranks satimp / wga by likelihood, others by loss."""

from __future__ import annotations

import math

import pytest
import torch

from baldro import aggregators, objectives
from baldro.composition import UnlearnLoss
from baldro.objectives import ForgetInputs

from .conftest import stats_from_rows

PROBS = [0.99, 0.8, 0.3, 0.01]  # one answer token per sample: remembered … fully forgotten


def _inputs(probs: list[float]) -> ForgetInputs:
    return ForgetInputs(stats_from_rows([[-math.log(p)] for p in probs]))


@pytest.mark.parametrize("name", ["satimp", "wga"])
def test_group_keeps_the_most_likely_rows_for_non_monotone_objectives(name):
    inputs = _inputs(PROBS)
    objective = objectives.build(name)
    losses = objective(inputs).tolist()
    # by loss, the remembered row 0 and the fully forgotten row 3 (loss ≈ 0, no gradient left) would be kept
    assert sorted(sorted(range(4), key=lambda i: -losses[i])[:2]) == [0, 3]
    loss = UnlearnLoss(objective, aggregators.build("group", ratio=0.5))
    assert loss.aggregator.rank_by == "likelihood"
    _, _, weights = loss.forget_part(inputs)
    assert weights.tolist() == [0.5, 0.5, 0.0, 0.0]


def test_satimp_values_of_the_example_by_hand():
    losses = objectives.build("satimp")(_inputs(PROBS)).tolist()
    expected = [p**5 * (1 - p) * math.log(p) for p in PROBS]
    assert losses == pytest.approx(expected, rel=1e-9)
    assert max(abs(v) for v in expected) < 0.018  # the per-token scale: p^5(1-p)|log p| ≤ 0.0180 (at p ≈ 0.694)


@pytest.mark.parametrize("name", ["ga", "npo", "simnpo"])
def test_auto_ranks_by_loss_for_monotone_objectives(name):
    loss = UnlearnLoss(objectives.build(name), aggregators.build("group"))
    assert loss.aggregator.rank_by == "loss"


@pytest.mark.parametrize(
    ("name", "monotone"), [("ga", True), ("npo", True), ("simnpo", True), ("satimp", False), ("wga", False)]
)
def test_declared_property_matches_the_loss_shape(name, monotone):
    """Single-token samples on a grid of p: the loss is monotone in p exactly when the objective says so."""
    probs = [i / 50 for i in range(1, 50)]
    inputs = _inputs(probs)
    inputs.ref_logp = torch.full((len(probs),), math.log(0.5), dtype=torch.float64)
    losses = objectives.build(name)(inputs).detach()
    diffs = losses[1:] - losses[:-1]
    assert bool((diffs > 0).all() or (diffs < 0).all()) is monotone
    assert objectives.build(name).loss_is_hardness is monotone


@pytest.mark.parametrize("name", ["satimp", "wga"])
def test_explicit_rank_by_loss_is_refused_for_non_monotone_objectives(name):
    with pytest.raises(ValueError, match=r"rank_by='loss' is meaningless with objective .*use rank_by: likelihood"):
        UnlearnLoss(objectives.build(name), aggregators.build("group", rank_by="loss"))
    explicit = UnlearnLoss(objectives.build(name), aggregators.build("group", rank_by="likelihood"))
    assert explicit.aggregator.rank_by == "likelihood"


def test_auto_alone_ranks_by_loss():
    value, weights = aggregators.build("group", ratio=0.5)(torch.tensor([1.0, 4.0, 2.0, 3.0]))
    assert weights.tolist() == [0.0, 0.5, 0.0, 0.5] and float(value) == 3.5


def test_dv_beta_must_sit_on_the_satimp_scale():
    """β = 2 on SatImp's losses gives uniform weights; the preset β 0.005 weighs them."""
    from baldro.experiments.methods import DV_BETA

    losses = objectives.build("satimp")(_inputs([0.95, 0.85, 0.7, 0.5])).detach()
    _, flat = aggregators.build("dv", beta=2.0)(losses)
    assert float(flat.max() / flat.min()) < 1.01
    _, weighed = aggregators.build("dv", beta=DV_BETA["satimp"])(losses)
    assert float(weighed.max() / weighed.min()) > 2.0
