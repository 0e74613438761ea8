"""``simnpo``: SimNPO (Fan et al. 2024, "Simplicity Prevails: Rethinking Negative Preference Optimization for LLM
Unlearning", Eq. 5, reference-free).

ℓ_i = −(2/β)·log σ(β·(NLL_i/|y_i| − δ)), NLL_i summed over answer tokens, |y_i| the answer-token count.
δ sits inside β·(…), as in the reference implementation. Defaults β = 4.5, δ = 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor

from baldro.core.params import Number
from baldro.objectives.base import OBJECTIVES, ForgetInputs, Objective

Beta = Number(gt=0, help="β: inverse temperature")
Delta = Number(help="δ: the margin inside β·(NLL/|y| − δ)")


@OBJECTIVES.register("simnpo")
@dataclass
class SimNPO(Objective):
    beta: Beta = 4.5
    delta: Delta = 0.0

    def __call__(self, inputs: ForgetInputs) -> Tensor:
        return -(2.0 / self.beta) * F.logsigmoid(self.beta * (inputs.stats.nll_mean - self.delta))
