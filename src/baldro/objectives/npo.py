"""``npo``: Negative Preference Optimization (Zhang et al. 2024, "Negative Preference Optimization: From
Catastrophic Collapse to Effective Unlearning", Eq. 3).

ℓ_i = −(2/β)·log σ(−β·(log π_θ(y_i|x_i) − log π_ref(y_i|x_i))) = (2/β)·softplus(β·r_i),
with log-probabilities summed over answer tokens. Equals (2/β)·ln 2 when π_θ = π_ref and → 0 as r_i → −∞.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor

from baldro.core.params import Number
from baldro.objectives.base import OBJECTIVES, ForgetInputs, Objective, need

Beta = Number(gt=0, help="β: inverse temperature of the preference loss")


@OBJECTIVES.register("npo")
@dataclass
class NPO(Objective):
    beta: Beta = 0.1
    needs_reference = True

    def __call__(self, inputs: ForgetInputs) -> Tensor:
        ref_logp = need(inputs.ref_logp, "the reference log-likelihoods (ref_logp)", "npo")
        log_ratio = inputs.stats.logp_sum - ref_logp.to(inputs.stats.token_nll.dtype)
        return (2.0 / self.beta) * F.softplus(self.beta * log_ratio)
