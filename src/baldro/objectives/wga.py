"""``wga``: weighted gradient ascent (Wang et al. 2025, "Rethinking LLM Unlearning Objectives: A Gradient
Perspective and Go Beyond"). Per token ℓ_t = −sg[p_t^β]·NLL_t, β = 1; per sample the mean over answer tokens."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from baldro.objectives.base import OBJECTIVES, ForgetInputs, Objective


@OBJECTIVES.register("wga")
@dataclass
class WeightedGA(Objective):
    beta: float = 1.0

    def __call__(self, inputs: ForgetInputs) -> Tensor:
        nll = inputs.stats.token_nll
        token_loss = -((-nll.detach()).exp() ** self.beta) * nll
        return inputs.stats.token_mean(token_loss)
