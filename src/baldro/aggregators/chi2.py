"""``chi2``: the χ²-penalised worst case (beyond the paper; its open question on other divergences).

L = sup_{q ∈ Δ_B} Σ q_i ℓ_i − (τ/2)·B·Σ (q_i − 1/B)².  The maximiser is q_i = max(0, 1/B + (ℓ_i − η)/(τ·B)) with η
set so Σ q = 1 — the Euclidean projection of 1/B + ℓ/(τB) onto the simplex, computed exactly by sorting. The value
is that optimum and, by Danskin's theorem, its gradient with respect to ℓ is q. τ→∞ gives the mean.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from baldro.aggregators.base import AGGREGATORS, Aggregator, check_losses
from baldro.core.params import Number


def project_to_simplex(v: Tensor) -> Tensor:
    """Euclidean projection of a vector onto the probability simplex (sort-based, exact)."""
    u = torch.sort(v, descending=True).values
    css = torch.cumsum(u, dim=0) - 1.0
    idx = torch.arange(1, v.numel() + 1, dtype=v.dtype, device=v.device)
    rho = int((u - css / idx > 0).nonzero().max())
    theta = css[rho] / (rho + 1)
    return (v - theta).clamp(min=0)


def chi2_weights(losses: Tensor, tau: float) -> Tensor:
    n = losses.numel()
    x = losses.detach().double()
    return project_to_simplex(1.0 / n + x / (tau * n))


Tau = Number(gt=0, help="τ: weight of the χ² penalty (large τ → the mean)")


@AGGREGATORS.register("chi2")
@dataclass
class Chi2Aggregator(Aggregator):
    tau: Tau = 1.0
    last_stats: dict[str, float] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __call__(self, losses: Tensor, *, nll: Tensor | None = None) -> tuple[Tensor, Tensor]:
        check_losses(losses)
        n = losses.numel()
        q64 = chi2_weights(losses, self.tau)
        penalty = 0.5 * self.tau * n * float(((q64 - 1.0 / n) ** 2).sum())
        q = q64.to(losses.dtype)
        return (q * losses).sum() - penalty, q
