"""``nll``: the retain NLL, a token mean over all answer tokens of the batch, equal to HF's ``outputs.loss`` (GradDiff,
Liu et al. 2022; TOFU's retain loss); ``reduction='sequence_sum'``: the mean over sequences of the summed NLL.

``reduction="token_mean"`` (default): Σ_i Σ_t NLL_{i,t} / Σ_i |y_i| (open-unlearning's retain loss too).
``reduction="sequence_sum"``: (1/B) Σ_i Σ_t NLL_{i,t} — what the released BalDRO code's DrNPO / DrSatImp trainers
use (``compute_batch_nll(...).mean()``), i.e. λ scaled by the answer length (``compat: released``).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from baldro.core.params import Choice
from baldro.retain.base import RETAIN_TERMS, RetainInputs, RetainTerm

REDUCTIONS = ("token_mean", "sequence_sum")


Reduction = Choice(*REDUCTIONS, help="token_mean: over all answer tokens; sequence_sum: mean of summed NLLs")


@RETAIN_TERMS.register("nll")
@dataclass
class RetainNLL(RetainTerm):
    reduction: Reduction = "token_mean"

    def loss(self, inputs: RetainInputs) -> Tensor:
        s = inputs.stats
        if self.reduction == "sequence_sum":
            return s.nll_sum.mean()
        return s.token_nll.sum() / s.n_tokens.sum().clamp(min=1)

    def per_sample(self, inputs: RetainInputs) -> Tensor:
        return inputs.stats.nll_sum if self.reduction == "sequence_sum" else inputs.stats.nll_mean
