"""``kl``: KL(π_ref ‖ π_θ) of the next-token distributions, averaged over answer tokens only (open-unlearning also
averages over prompt and padding positions, which dilutes the term with batch-dependent padding).

The trainer runs the reference model's forward in the policy's numeric context (accelerate's bf16/fp16 autocast
under ``training.bf16/fp16``) and through the same lean LM head, so the term is exactly 0 at lr = 0."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from baldro.retain.base import RETAIN_TERMS, RetainInputs, RetainTerm


def _token_kl(inputs: RetainInputs) -> Tensor:
    if inputs.token_kl is None:
        raise ValueError("retain term 'kl' needs the reference model's per-token KL (token_kl)")
    return inputs.token_kl


@RETAIN_TERMS.register("kl")
@dataclass
class RetainKL(RetainTerm):
    needs_reference_logits = True

    def loss(self, inputs: RetainInputs) -> Tensor:
        return _token_kl(inputs).sum() / inputs.stats.n_tokens.sum().clamp(min=1)

    def per_sample(self, inputs: RetainInputs) -> Tensor:
        return inputs.stats.token_mean(_token_kl(inputs))
