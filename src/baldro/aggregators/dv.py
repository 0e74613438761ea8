"""``dv`` (BalDRO-DV, Shao et al. 2026): the Donsker–Varadhan dual form of the KL-ball worst case.

paper sign (default):   L = β·(logsumexp(ℓ/β) − log B) = β·log((1/B) Σ exp(ℓ_i/β)),  ∂L/∂ℓ = softmax(ℓ/β).
    A soft maximum: still-remembered (high-loss) samples get more weight; β→∞ gives the mean, β→0 the max.
official sign:          L = −β·(logsumexp(−ℓ/β) − log B),  ∂L/∂ℓ = softmax(−ℓ/β).
    The soft minimum the paper's released code computes: already-forgotten (low-loss) samples get more weight.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

from baldro.aggregators.base import AGGREGATORS, Aggregator, check_losses
from baldro.core.params import Choice, Number

SIGNS = ("paper", "official")


def dv_aggregate(losses: Tensor, beta: float, sign: str = "paper") -> tuple[Tensor, Tensor]:
    """(value, weights) of the DV aggregate, computed in float32 or wider.

    With z = s·(ℓ − c)/β for the (detached) mean loss c, L = c + s·β·log mean exp(z): the same value and gradient as
    the formula above. log mean exp(z) is ``torch.logsumexp(z) − log B`` when some |z_i| ≥ 1 and
    ``log1p(mean(expm1(z)))`` otherwise, which keeps the small difference from 0 that a large β multiplies (float32,
    β = 1e6: the mean to 1e-7 instead of an error of 5e-2).
    """
    s = 1.0 if sign == "paper" else -1.0
    x = losses.float() if losses.dtype in (torch.float16, torch.bfloat16) else losses
    center = x.detach().mean()
    z = s * (x - center) / beta
    small = z.detach().abs().max() < 1.0
    near_zero = torch.log1p(torch.expm1(z.clamp(-1.0, 1.0)).mean())
    general = torch.logsumexp(z, dim=0) - math.log(x.numel())
    value = center + s * beta * torch.where(small, near_zero, general)
    return value, torch.softmax(z.detach(), dim=0)


Beta = Number(gt=0, help="β: temperature of the soft maximum (large β → the mean)")
Sign = Choice(*SIGNS, help="paper: soft maximum; official: the released code's soft minimum")


@AGGREGATORS.register("dv")
@dataclass
class DVAggregator(Aggregator):
    beta: Beta = 2.0
    sign: Sign = "paper"
    last_stats: dict[str, float] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __call__(self, losses: Tensor, *, nll: Tensor | None = None) -> tuple[Tensor, Tensor]:
        check_losses(losses)
        return dv_aggregate(losses, self.beta, self.sign)
