"""``group`` (BalDRO-G, Shao et al. 2026, Sec. 4): mean over the hardest ⌈ratio·B⌉ samples of the batch.

"Hardest" = highest loss (``rank_by="loss"``, the paper's text) or lowest current mean NLL, i.e. the most likely
(``rank_by="likelihood"``, what the released code ranks by; pass ``nll``). ``rank_by="auto"`` (default) takes the
ranking the objective declares (``Objective.rank_by``; resolved by ``UnlearnLoss``: likelihood for satimp and wga,
whose loss is not monotone in hardness); on its own, with only losses to go by, it ranks by loss.
``rounding="floor"`` keeps k = max(1, ⌊ratio·B⌋) rows, as the released code does (``compat: released``). The gradient flows only through the kept
samples, each with weight 1/k. Ties at the cut are resolved deterministically and symmetrically: the samples tied
with the k-th ranking key share the remaining weight equally (the CVaR subgradient that treats equals equally), so
equal losses give uniform weights and permuting the batch permutes the weights. Ranking by loss, this does not
change the value: it is the mean of the top k losses either way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import Tensor

from baldro.aggregators.base import AGGREGATORS, Aggregator, check_losses
from baldro.core.params import Choice, Number

RANK_BY = ("auto", "loss", "likelihood")
ROUNDINGS = ("ceil", "floor")


def kept_count(ratio: float, batch_size: int, rounding: str = "ceil") -> int:
    """k, at least 1. ``"ceil"``: ⌈ratio·B⌉ with ratio·B rounded to 9 decimals first (so 0.3·10 keeps 3, not 4).
    ``"floor"``: ``int(B * ratio)`` on the floating-point product, exactly as the released code
    (``src/trainer/utils.py`` ``compute_forget_group``) — so (0.7, 90) keeps 62, since 90·0.7 = 62.99999999999999."""
    if rounding == "floor":
        return max(1, int(batch_size * ratio))
    return max(1, math.ceil(round(ratio * batch_size, 9)))


def _ranking_key(losses: Tensor, rank_by: str, nll: Tensor | None) -> Tensor:
    """Larger key = harder sample (kept first)."""
    if rank_by == "likelihood":
        if nll is None:
            raise ValueError(
                "group aggregator with rank_by='likelihood' needs the per-sample NLL: call agg(losses, nll=...)"
            )
        if nll.shape != losses.shape:
            raise ValueError(
                f"group aggregator: nll has shape {tuple(nll.shape)}, losses {tuple(losses.shape)}; pass one NLL per sample"
            )
        key = -nll.detach()
    else:
        key = losses.detach()
    return key.float() if key.dtype in (torch.float16, torch.bfloat16) else key


def group_select(
    losses: Tensor, ratio: float, rank_by: str = "loss", nll: Tensor | None = None, rounding: str = "ceil"
) -> Tensor:
    """Indices (sorted ascending) of the k kept samples; ties at the cut keep the lower batch index."""
    key = _ranking_key(losses, rank_by, nll)
    order = torch.sort(key, descending=True, stable=True).indices
    return order[: kept_count(ratio, losses.numel(), rounding)].sort().values


def group_weights(
    losses: Tensor, ratio: float, rank_by: str = "loss", nll: Tensor | None = None, rounding: str = "ceil"
) -> Tensor:
    """BalDRO-G weights: 1/k on samples ranked strictly above the k-th key; samples tied with it share the rest."""
    key = _ranking_key(losses, rank_by, nll)
    k = kept_count(ratio, losses.numel(), rounding)
    threshold = torch.sort(key, descending=True).values[k - 1]
    nan, nan_cut = key.isnan(), threshold.isnan()
    above = (key > threshold) | (nan & ~nan_cut)  # NaN ranks hardest (as in torch.sort): it is kept, so the value
    tied = (key == threshold) | (nan & nan_cut)  # turns NaN and the trainer's non-finite check reports it
    share = (k - int(above.sum())) / (k * int(tied.sum()))
    weights = above.to(losses.dtype) / k + tied.to(losses.dtype) * share
    return weights.detach()


Ratio = Number(gt=0, le=1, help="share of the batch kept (the hardest samples)")
RankBy = Choice(*RANK_BY, help="hardness: loss, likelihood, or auto (what the objective declares)")
Rounding = Choice(*ROUNDINGS, help="k = ⌈ratio·B⌉ (ceil) or max(1, ⌊ratio·B⌋) (floor, the released code)")


@AGGREGATORS.register("group")
@dataclass
class GroupAggregator(Aggregator):
    sparse: ClassVar[bool] = True
    ratio: Ratio = 0.5
    rank_by: RankBy = "auto"
    rounding: Rounding = "ceil"
    last_stats: dict[str, float] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __call__(self, losses: Tensor, *, nll: Tensor | None = None) -> tuple[Tensor, Tensor]:
        check_losses(losses)
        rank_by = "loss" if self.rank_by == "auto" else self.rank_by
        weights = group_weights(losses, self.ratio, rank_by, nll, self.rounding)
        return (weights * losses).sum(), weights
