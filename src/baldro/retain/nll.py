"""``nll``: the retain NLL, a token mean over all answer tokens of the batch, equal to HF's ``outputs.loss``
(GradDiff, Liu et al. 2022; TOFU's retain loss)."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from baldro.retain.base import RETAIN_TERMS, RetainInputs, RetainTerm


@RETAIN_TERMS.register("nll")
@dataclass
class RetainNLL(RetainTerm):
    def loss(self, inputs: RetainInputs) -> Tensor:
        s = inputs.stats
        return s.token_nll.sum() / s.n_tokens.sum().clamp(min=1)

    def per_sample(self, inputs: RetainInputs) -> Tensor:
        return inputs.stats.nll_mean
