"""The unlearning loss as a composition: objective × aggregator × retain term.

    total = γ · aggregate(objective(forget batch)) + λ · retain(retain batch)

Naming: ``forget_weight`` = γ (the anchors' ``gamma``; the paper fixes it to 1) and ``retain_weight`` = λ (the
paper's λ; the anchors' ``alpha``). With ``retain_aggregator`` set, the retain term is the aggregate of its
per-sample values instead of its token mean (the paper's ablation of DRO on the retain side).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor

from baldro.aggregators import Aggregator
from baldro.objectives import ForgetInputs, Objective
from baldro.retain import RetainInputs, RetainTerm


@dataclass
class LossOutput:
    """The total loss and what is worth logging: per-sample forget losses and their DRO weights (detached)."""

    total: Tensor
    forget_loss: Tensor
    retain_loss: Tensor | None
    per_sample: Tensor
    weights: Tensor
    stats: dict[str, float] = field(default_factory=dict)


@dataclass
class UnlearnLoss:
    objective: Objective
    aggregator: Aggregator
    retain: RetainTerm | None = None
    forget_weight: float = 1.0
    retain_weight: float = 1.0
    retain_aggregator: Aggregator | None = None

    def forget_part(self, inputs: ForgetInputs) -> tuple[Tensor, Tensor, Tensor]:
        """(aggregate, per-sample losses, weights) of the forget batch."""
        per_sample = self.objective(inputs)
        value, weights = self.aggregator(per_sample, nll=inputs.stats.nll_mean.detach())
        return value, per_sample, weights

    def retain_part(self, inputs: RetainInputs) -> Tensor:
        assert self.retain is not None
        if self.retain_aggregator is None:
            return self.retain.loss(inputs)
        return self.retain_aggregator(self.retain.per_sample(inputs), nll=inputs.stats.nll_mean.detach())[0]

    def __call__(self, forget: ForgetInputs, retain: RetainInputs | None = None) -> LossOutput:
        forget_value, per_sample, weights = self.forget_part(forget)
        total = self.forget_weight * forget_value
        retain_value = None
        if self.retain is not None and self.retain_weight != 0:
            if retain is None:
                raise ValueError("this loss has a retain term: pass the retain batch's RetainInputs")
            retain_value = self.retain_part(retain)
            total = total + self.retain_weight * retain_value
        return LossOutput(
            total=total,
            forget_loss=forget_value.detach(),
            retain_loss=None if retain_value is None else retain_value.detach(),
            per_sample=per_sample.detach(),
            weights=weights,
            stats=dict(self.aggregator.last_stats),
        )
