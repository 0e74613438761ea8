"""The unlearning loss as a composition: objective × aggregator × retain term — the only place the formula lives.

    total = γ · aggregate(objective(forget batch)) + λ · s · retain(retain batch)

Naming: ``forget_weight`` = γ (open-unlearning's ``gamma``; the paper fixes it to 1) and ``retain_weight`` = λ (the
paper's λ; open-unlearning's ``alpha``). With ``retain_aggregator`` set, the retain term is the aggregate of its
per-sample values instead of its token mean (the paper's ablation of DRO on the retain side).

Two ways to aggregate, the same gradient:
- *dense*: the aggregator runs on the per-sample losses ℓ of this batch;
- *with weights fixed in advance* (``weights=w``): the forget part is the surrogate Σ_i w_i·ℓ_i, whose gradient is the
  aggregator's when w = ∂L/∂ℓ at the same ℓ (Danskin / the chain rule). The trainer uses it for BalDRO-G (``w`` from a
  no-grad ranking pass; ``rows`` = the kept rows, the only ones run with autograd) and for ``dro_scope: global``
  (``w`` from the whole effective batch; ``retain_share`` s = this micro-batch's share of the window's retain tokens).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

from baldro.aggregators import Aggregator
from baldro.objectives import ForgetInputs, Objective
from baldro.retain import RetainInputs, RetainTerm

QUANTILES = (0.1, 0.5, 0.9)


@dataclass
class LossOutput:
    """The total loss and what is worth logging: forget/retain parts, per-sample losses, DRO weights (detached)."""

    total: Tensor
    forget_loss: Tensor
    retain_loss: Tensor | None
    per_sample: Tensor
    weights: Tensor
    nll: Tensor | None = None
    stats: dict[str, float] = field(default_factory=dict)
    retain_share: float = 1.0


def weight_statistics(weights: Tensor) -> dict[str, float]:
    """Summaries of a DRO weight vector w (Σw = 1): effective sample size 1/Σw² (B for uniform weights, k for
    BalDRO-G's k kept rows), the largest weight, the entropy −Σ w log w (log B when uniform) and the kept fraction
    (share of rows with w > 0)."""
    w = weights.detach().double()
    if w.numel() == 0:
        return {}
    positive = w[w > 0]
    return {
        "ess": float(1.0 / (w * w).sum()) if positive.numel() else math.nan,
        "max_weight": float(w.max()),
        "weight_entropy": float(-(positive * positive.log()).sum()),
        "kept_fraction": float(positive.numel() / w.numel()),
    }


def loss_quantiles(per_sample: Tensor) -> dict[str, float]:
    """The 10/50/90 % quantiles (linear interpolation) and the plain mean of per-sample forget losses."""
    x = per_sample.detach().double().flatten()
    if x.numel() == 0:
        return {}
    q = torch.quantile(x, torch.tensor(QUANTILES, dtype=x.dtype, device=x.device)).tolist()
    out = {f"loss_q{round(100 * p)}": v for p, v in zip(QUANTILES, q)}
    out["loss_mean"] = float(x.mean())
    return out


@dataclass
class UnlearnLoss:
    objective: Objective
    aggregator: Aggregator
    retain: RetainTerm | None = None
    forget_weight: float = 1.0
    retain_weight: float = 1.0
    retain_aggregator: Aggregator | None = None

    @property
    def sparse(self) -> bool:
        """Whether the aggregator's weights are zero on some rows, so only the others need autograd."""
        return bool(getattr(self.aggregator, "sparse", False))

    @property
    def has_retain(self) -> bool:
        return self.retain is not None and self.retain_weight != 0

    def plan(self, per_sample: Tensor, nll: Tensor | None = None) -> Tensor:
        """The aggregator's weights w = ∂L/∂ℓ for detached losses (BalDRO-G's ranking pass, the global pre-pass)."""
        _, weights = self.aggregator(per_sample.detach(), nll=None if nll is None else nll.detach())
        return weights.detach()

    def retain_value(self, inputs: RetainInputs) -> Tensor:
        assert self.retain is not None
        if self.retain_aggregator is None:
            return self.retain.loss(inputs)
        return self.retain_aggregator(self.retain.per_sample(inputs), nll=inputs.stats.nll_mean.detach())[0]

    def __call__(
        self,
        forget: ForgetInputs,
        retain: RetainInputs | None = None,
        *,
        weights: Tensor | None = None,
        rows: Tensor | None = None,
        retain_share: float = 1.0,
    ) -> LossOutput:
        """The loss of one batch. ``weights``: fixed weights over the batch's rows (see the module docstring);
        ``rows``: which rows ``forget`` holds when it was computed on a subset (default: all)."""
        per_sample = self.objective(forget)
        nll = forget.stats.nll_mean.detach()
        if weights is None:
            forget_value, weights = self.aggregator(per_sample, nll=nll)
        else:
            w = weights if rows is None else weights[rows]
            forget_value = (w.to(per_sample.dtype) * per_sample).sum()
        total = self.forget_weight * forget_value
        retain_value = None
        if self.has_retain:
            if retain is None:
                raise ValueError("this loss has a retain term: pass the retain batch's RetainInputs")
            if retain_share != 1.0 and self.retain_aggregator is not None:
                raise ValueError("a retain share (dro_scope: global) does not combine with retain_aggregator")
            retain_value = self.retain_value(retain) * retain_share
            total = total + self.retain_weight * retain_value
        return LossOutput(
            total=total,
            forget_loss=forget_value.detach(),
            retain_loss=None if retain_value is None else retain_value.detach(),
            per_sample=per_sample.detach(),
            weights=weights.detach(),
            nll=nll,
            stats=dict(self.aggregator.last_stats),
            retain_share=retain_share,
        )
