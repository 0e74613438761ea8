"""``mean``: the empirical risk, (1/B) Σ ℓ_i (the base methods' own reduction)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from baldro.aggregators.base import AGGREGATORS, Aggregator, check_losses


@AGGREGATORS.register("mean")
@dataclass
class MeanAggregator(Aggregator):
    last_stats: dict[str, float] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __call__(self, losses: Tensor, *, nll: Tensor | None = None) -> tuple[Tensor, Tensor]:
        check_losses(losses)
        weights = torch.full_like(losses, 1.0 / losses.numel()).detach()
        return losses.mean(), weights
