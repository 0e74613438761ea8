"""``wga``: weighted gradient ascent (Wang et al. 2025, "Rethinking LLM Unlearning Objectives: A Gradient
Perspective and Go Beyond"). Per token ℓ_t = −sg[p_t^β]·NLL_t, β = 1; per sample the mean over answer tokens.

ℓ_t ∈ [−1/(e·β), 0] and → 0 both when remembered (p → 1) and when forgotten (p → 0): BalDRO-G ranks by likelihood
(``loss_is_hardness = False``); a DV β on this scale is ≈ 0.1 (see docs/compat.md)."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from baldro.core.params import Number
from baldro.objectives.base import OBJECTIVES, ForgetInputs, Objective

Beta = Number(help="β: exponent of p in the token weight p^β")


@OBJECTIVES.register("wga")
@dataclass
class WeightedGA(Objective):
    beta: Beta = 1.0
    loss_is_hardness = False

    def token_losses(self, inputs: ForgetInputs) -> Tensor:
        nll = inputs.stats.token_nll
        return -((-nll.detach()).exp() ** self.beta) * nll

    def __call__(self, inputs: ForgetInputs) -> Tensor:
        return inputs.stats.token_mean(self.token_losses(inputs))
