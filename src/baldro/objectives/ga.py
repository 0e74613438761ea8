"""``ga``: gradient ascent. ℓ_i = −(1/|y_i|) Σ_t NLL_t — the negated token-mean NLL of sample i.

(open-unlearning's GA negates HF's batch loss, a token mean over the whole batch; with the ``mean`` aggregator ours
averages per-sample means instead, which weighs short and long answers equally.)
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from baldro.objectives.base import OBJECTIVES, ForgetInputs, Objective


@OBJECTIVES.register("ga")
@dataclass
class GradientAscent(Objective):
    def __call__(self, inputs: ForgetInputs) -> Tensor:
        return -inputs.stats.nll_mean
