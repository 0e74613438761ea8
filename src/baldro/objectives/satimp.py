"""``satimp``: saturation-importance weighted GA (Yang et al. 2025, "Exploring Criteria of Loss Reweighting to
Enhance LLM Unlearning").

Per token: ℓ_t = −sg[p_t^β1 · (1 − p_t)^β2]·NLL_t, p_t = exp(−NLL_t), sg = stop-gradient; β1 = 5, β2 = 1.

``granularity="sample"`` (default): ℓ_i = mean of ℓ_t over sample i's answer tokens.
``granularity="token"``: open-unlearning averages ℓ_t over all answer tokens of the batch; ℓ_i = (B/N)·Σ_{t∈i} ℓ_t
(N = the batch's answer-token count) reproduces that exactly under the ``mean`` aggregator.

Scale and ranking: ℓ_t ∈ [−0.018, 0] for β1 = 5, β2 = 1 (minimum at p ≈ 0.69), and ℓ_t → 0 both when remembered
(p → 1) and when forgotten (p → 0), so the loss does not measure hardness: BalDRO-G ranks by likelihood
(``loss_is_hardness = False``) and a DV β must sit on this scale (β ≈ 0.005 rather than NPO's 2; see docs/compat.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from baldro.core.params import Choice, Number
from baldro.core.sequence import SequenceStats
from baldro.objectives.base import OBJECTIVES, ForgetInputs, Objective

GRANULARITIES = ("sample", "token")


def reduce_tokens(stats: SequenceStats, token_loss: Tensor, granularity: str) -> Tensor:
    """Per-sample values of a per-token loss: token mean per sample, or the batch-token-mean share."""
    if granularity == "sample":
        return stats.token_mean(token_loss)
    per_sample_sum = token_loss.new_zeros(stats.batch_size).index_add(0, stats.sample_index, token_loss)
    return per_sample_sum * (stats.batch_size / max(int(stats.n_tokens.sum()), 1))


Beta1 = Number(help="β1: exponent of p in the token weight p^β1·(1−p)^β2")
Beta2 = Number(help="β2: exponent of (1−p) in the token weight")
Granularity = Choice(*GRANULARITIES, help="sample: token mean per sample; token: the batch-token-mean share")


@OBJECTIVES.register("satimp")
@dataclass
class SatImp(Objective):
    beta1: Beta1 = 5.0
    beta2: Beta2 = 1.0
    granularity: Granularity = "sample"
    loss_is_hardness = False

    def token_losses(self, inputs: ForgetInputs) -> Tensor:
        nll = inputs.stats.token_nll
        p = (-nll.detach()).exp()
        return -(p**self.beta1 * (1 - p) ** self.beta2) * nll

    def __call__(self, inputs: ForgetInputs) -> Tensor:
        return reduce_tokens(inputs.stats, self.token_losses(inputs), self.granularity)
