"""Refusal-based objectives (Maini et al. 2024, TOFU; Zhang et al. 2024 for the DPO form).

``idk_nll``: ℓ_i = token-mean NLL of the refusal answer y_idk,i ("I don't know"-style, from the data layer).
``idk_dpo``: ℓ_i = −(2/β)·log σ(β·[(log π_θ − log π_ref)(y_idk) − (log π_θ − log π_ref)(y_forget)]), β = 0.1,
log-probabilities summed over answer tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor

from baldro.core.params import Number
from baldro.objectives.base import OBJECTIVES, ForgetInputs, Objective, need

Beta = Number(gt=0, help="β: inverse temperature of the DPO loss")


@OBJECTIVES.register("idk_nll")
@dataclass
class IdkNLL(Objective):
    needs_idk = True

    def __call__(self, inputs: ForgetInputs) -> Tensor:
        return need(inputs.idk_stats, "refusal answers (idk_stats)", "idk_nll").nll_mean


@OBJECTIVES.register("idk_dpo")
@dataclass
class IdkDPO(Objective):
    beta: Beta = 0.1
    needs_reference = True
    needs_idk = True

    def __call__(self, inputs: ForgetInputs) -> Tensor:
        idk = need(inputs.idk_stats, "refusal answers (idk_stats)", "idk_dpo")
        ref_forget = need(inputs.ref_logp, "the reference log-likelihoods (ref_logp)", "idk_dpo")
        ref_idk = need(inputs.ref_idk_logp, "the reference refusal log-likelihoods (ref_idk_logp)", "idk_dpo")
        margin = (idk.logp_sum - ref_idk) - (inputs.stats.logp_sum - ref_forget)
        return -(2.0 / self.beta) * F.logsigmoid(self.beta * margin)
