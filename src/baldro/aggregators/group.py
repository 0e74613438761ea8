"""``group`` (BalDRO-G, Shao et al. 2026, Sec. 4): mean over the hardest ⌈ratio·B⌉ samples of the batch.

"Hardest" = highest loss (``rank_by="loss"``, the paper's text) or lowest current mean NLL, i.e. the most likely
(``rank_by="likelihood"``, what the released code ranks by; pass ``nll``). Ties keep the lower batch index. The
gradient flows only through the kept samples, each with weight 1/k.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

from baldro.aggregators.base import AGGREGATORS, Aggregator, check_losses
from baldro.core.registry import require

RANK_BY = ("loss", "likelihood")


def kept_count(ratio: float, batch_size: int) -> int:
    """k = ⌈ratio·B⌉, at least 1 (rounded to 9 decimals first so 0.3·10 keeps 3, not 4)."""
    return max(1, math.ceil(round(ratio * batch_size, 9)))


def group_select(losses: Tensor, ratio: float, rank_by: str = "loss", nll: Tensor | None = None) -> Tensor:
    """Indices (sorted ascending) of the samples BalDRO-G keeps."""
    if rank_by == "likelihood":
        if nll is None:
            raise ValueError("group aggregator with rank_by='likelihood' needs the per-sample NLL: call agg(losses, nll=...)")
        key = -nll.detach()
    else:
        key = losses.detach()
    order = torch.sort(key.float(), descending=True, stable=True).indices
    return order[: kept_count(ratio, losses.numel())].sort().values


@AGGREGATORS.register("group")
@dataclass
class GroupAggregator(Aggregator):
    ratio: float = 0.5
    rank_by: str = "loss"
    last_stats: dict[str, float] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        require(0 < self.ratio <= 1, "ratio", self.ratio, "in (0, 1]")
        require(self.rank_by in RANK_BY, "rank_by", self.rank_by, f"one of {', '.join(RANK_BY)}")

    def __call__(self, losses: Tensor, *, nll: Tensor | None = None) -> tuple[Tensor, Tensor]:
        check_losses(losses)
        kept = group_select(losses, self.ratio, self.rank_by, nll)
        weights = torch.zeros_like(losses).detach()
        weights[kept] = 1.0 / kept.numel()
        return losses[kept].mean(), weights
