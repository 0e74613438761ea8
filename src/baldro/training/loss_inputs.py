"""What the loss reads from a collated batch: per-sample statistics of the forget / idk / retain parts (lean LM
head, :mod:`baldro.core.sequence`), the reference log-likelihoods of NPO / IdkDPO (from the cache, or live from the
reference model) and the answer-token KL of the ``kl`` retain term.

What they read besides the batch is a :class:`LossSources` (the Trainer builds one per call, so a reference cache
computed later is seen); the DRO-scope strategies (:mod:`baldro.training.dro_scope`) call them through
``UnlearnTrainer.forget_inputs`` / ``retain_inputs``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from baldro.core.head_in_forward import per_token_in_forward
from baldro.core.labels import IGNORE_INDEX
from baldro.core.sequence import (
    answer_token_kl,
    final_hidden_states,
    model_sequence_stats,
    output_head,
    stats_from_hidden,
    stats_from_token_nll,
)
from baldro.objectives import ForgetInputs, Objective
from baldro.retain import RetainInputs, RetainTerm
from baldro.training.reference_cache import ReferenceCache


@dataclass(frozen=True)
class LossSources:
    """What the per-sample pieces read besides the batch: the objective (whether it needs reference / refusal
    log-likelihoods), the retain term, ``chunk_tokens`` (the LM head's chunk size), the reference cache or live
    ``reference_model``, and ``policy_context(model)``: the numeric context the policy's forward runs in (None:
    plain precision)."""

    objective: Objective
    retain: RetainTerm | None
    chunk_tokens: int
    reference_cache: ReferenceCache | None
    reference_model: nn.Module | None
    policy_context: Callable[[nn.Module], Any]


def rows_of(part: dict[str, Tensor], rows: Tensor) -> dict[str, Tensor]:
    """The given rows of a collated part, with trailing all-padding columns removed (a column is kept while a row
    attends to it or labels it: with ``pad_masking: token`` a final EOS can be masked in every row)."""
    out = {k: v[rows] for k, v in part.items() if isinstance(v, Tensor) and v.dim() >= 1 and v.shape[0] > 0}
    mask = out.get("attention_mask")
    if mask is not None and mask.dim() == 2 and mask.numel():
        used = mask.bool().any(dim=0)
        if "labels" in out and out["labels"].shape == mask.shape:
            used |= (out["labels"] != IGNORE_INDEX).any(dim=0)
        used = used.nonzero()
        width = int(used.max()) + 1 if used.numel() else mask.shape[1]
        out = {k: (v[:, :width] if v.dim() == 2 else v) for k, v in out.items()}
    return out


def reference_logp(
    src: LossSources, part: dict[str, Tensor], which: str, model: nn.Module | None = None
) -> Tensor:
    """Σ log π_ref(answer) of each row of ``part``: from the reference cache, else live from ``reference_model`` (in
    the policy's numeric context)."""
    if src.reference_cache is not None:
        return src.reference_cache.lookup(part["index"], which)
    if src.reference_model is None:
        raise RuntimeError("no reference log-likelihoods: call ensure_reference_cache() or pass reference_model")
    with torch.no_grad():
        stats = model_sequence_stats(
            src.reference_model,
            part["input_ids"],
            part["labels"],
            part.get("attention_mask"),
            src.chunk_tokens,
            forward_context=src.policy_context(model),
            position_ids=part.get("position_ids"),
        )
    return stats.logp_sum


def forget_inputs(
    src: LossSources, model: nn.Module, inputs: dict[str, Any], rows: Tensor | None = None
) -> ForgetInputs:
    """The objective's inputs on the forget batch (optionally only ``rows``), with autograd as the caller sets."""
    forget = inputs["forget"] if rows is None else rows_of(inputs["forget"], rows)
    stats = model_sequence_stats(
        model, forget["input_ids"], forget["labels"], forget.get("attention_mask"), src.chunk_tokens,
        position_ids=forget.get("position_ids"),
    )
    fi = ForgetInputs(stats=stats)
    if src.objective.needs_reference:
        fi.ref_logp = reference_logp(src, forget, "forget", model)
    if src.objective.needs_idk:
        if "idk" not in inputs:
            raise ValueError(f"objective {src.objective!r} needs refusal answers: pass idk_dataset")
        idk = inputs["idk"] if rows is None else rows_of(inputs["idk"], rows)
        fi.idk_stats = model_sequence_stats(
            model, idk["input_ids"], idk["labels"], idk.get("attention_mask"), src.chunk_tokens,
            position_ids=idk.get("position_ids"),
        )
        if src.objective.needs_reference:
            fi.ref_idk_logp = reference_logp(src, idk, "idk", model)
    return fi


def retain_inputs(src: LossSources, model: nn.Module, retain: dict[str, Tensor]) -> RetainInputs:
    """The retain term's inputs on the retain batch; for ``kl`` also the answer-token KL to ``reference_model``."""
    term = src.retain
    if term is None or not term.needs_reference_logits:
        stats = model_sequence_stats(
            model, retain["input_ids"], retain["labels"], retain.get("attention_mask"), src.chunk_tokens,
            position_ids=retain.get("position_ids"),
        )
        return RetainInputs(stats=stats)
    positions, labels = retain.get("position_ids"), retain["labels"]
    with torch.no_grad():
        ref_hidden = final_hidden_states(
            src.reference_model, retain["input_ids"], retain.get("attention_mask"), src.policy_context(model),
            positions,
        )
    ref_head = output_head(src.reference_model)

    def nll_and_kl(features: Tensor, head: Any, linear: nn.Linear | None) -> Tensor:
        nll = stats_from_hidden(features, labels, head, src.chunk_tokens, linear=linear).token_nll
        return torch.stack([nll, answer_token_kl(features, ref_hidden, labels, head, ref_head, src.chunk_tokens)])

    # both per-token rows from inside the policy's forward (the head's weight gathered there under FSDP / ZeRO-3)
    values = per_token_in_forward(model, retain["input_ids"], retain.get("attention_mask"), nll_and_kl,
                                  position_ids=positions)
    return RetainInputs(stats=stats_from_token_nll(values[0], labels), token_kl=values[1])
