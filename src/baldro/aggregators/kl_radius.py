"""``kl_radius``: the KL-ball worst case with a radius ρ instead of a fixed temperature β (beyond the paper).

The KL-constrained worst case sup_{KL(Q‖P̂)≤ρ} E_Q[ℓ] has the dual  min_{β>0} g(β),  g(β) = β·log mean exp(ℓ/β) + β·ρ.
g is convex with g'(β) = ρ − KL(softmax(ℓ/β) ‖ uniform), so β* solves KL(q_β‖u) = ρ; we find it by bisection on
log β (fixed 64 iterations, in float64, without autograd). The loss value is the worst case itself,
E_{Q*}[ℓ] with Q* = softmax(ℓ/β*) — by strong duality g(β*) = dv(β*) + β*·ρ (the ``dv`` value at β* alone would
leave out β*·ρ) — and its gradient is that of dv(β*) with β* held constant (envelope theorem): softmax(ℓ/β*).
Where β* is clamped (ρ below what float64 resolves, or ρ ≥ log B: all mass on the worst samples) Q* is still a
distribution in the ball, so the value stays in [mean ℓ, max ℓ]. ρ→0 gives the mean; large ρ approaches the max.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

from baldro.aggregators.base import AGGREGATORS, Aggregator, check_losses
from baldro.aggregators.dv import dv_aggregate
from baldro.core.params import Number

ITERATIONS = 64
LOG_RANGE = (math.log(1e-4), math.log(1e6))  # β* is searched in [1e-4, 1e6] × spread(ℓ)


def kl_to_uniform(losses: Tensor, beta: float) -> float:
    """KL(softmax(ℓ/β) ‖ uniform) = Σ q log(q·B)."""
    logq = torch.log_softmax(losses / beta, dim=0)
    return float((logq.exp() * (logq + math.log(losses.numel()))).sum())


def solve_beta(losses: Tensor, rho: float) -> float:
    """β* = argmin_{β>0} β·log mean exp(ℓ/β) + β·ρ, clamped to [1e-4, 1e6]·(max ℓ − min ℓ)."""
    x = losses.detach().double()
    spread = float(x.max() - x.min())
    if spread == 0.0:
        return 1.0
    lo, hi = LOG_RANGE[0] + math.log(spread), LOG_RANGE[1] + math.log(spread)
    if kl_to_uniform(x, math.exp(lo)) <= rho:
        return math.exp(lo)
    if kl_to_uniform(x, math.exp(hi)) >= rho:
        return math.exp(hi)
    for _ in range(ITERATIONS):
        mid = 0.5 * (lo + hi)
        if kl_to_uniform(x, math.exp(mid)) > rho:
            lo = mid
        else:
            hi = mid
    return math.exp(0.5 * (lo + hi))


Rho = Number(gt=0, help="ρ: radius of the KL ball")


@AGGREGATORS.register("kl_radius")
@dataclass
class KLRadiusAggregator(Aggregator):
    rho: Rho = 0.1
    last_stats: dict[str, float] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __call__(self, losses: Tensor, *, nll: Tensor | None = None) -> tuple[Tensor, Tensor]:
        check_losses(losses)
        with torch.no_grad():
            beta_star = solve_beta(losses, self.rho)
        value, weights = dv_aggregate(losses, beta_star, "paper")
        worst_case = (weights.to(value.dtype) * losses.detach().to(value.dtype)).sum()
        self.last_stats = {"beta_star": beta_star}
        return value + (worst_case - value.detach()), weights
