"""DRO weights over the whole effective batch (``dro_scope: global``).

``micro`` (the anchors' behaviour) aggregates each device micro-batch on its own. ``global`` aggregates the
per-sample losses of every gradient-accumulation micro-batch on every process — the effective batch — exactly:

1. a no-grad pre-pass over the accumulation window (the Trainer fetches the whole window up front in
   ``get_batch_samples``) gives the detached per-sample losses ℓ of the local micro-batches;
2. they are gathered from all processes and the aggregator's weights w = ∂L/∂ℓ are computed on the full vector;
3. each micro-batch then back-propagates the surrogate  s · Σ_{i∈micro} w_i·ℓ_i  with ℓ recomputed with autograd,
   where s = (the Trainer's gradient-accumulation divisor) × (number of processes) undoes the Trainer's division
   and DDP's averaging.  Σ over all micro-batches and processes of ∇(Σ w_i ℓ_i) = Σ_i w_i ∇ℓ_i = ∇L(ℓ): the
   aggregator's gradient on the full batch (Danskin / the chain rule, w being ∂L/∂ℓ at the same ℓ).

The retain term, a token mean, is likewise normalised by the token count of the whole window on all processes.
Cost: one extra no-grad forward of the forget batch for smooth aggregators; for BalDRO-G this pass is the ranking
pass it needs anyway, and only the kept rows are then run with autograd. The pre-pass runs in training mode; with
dropout the weights come from a different dropout draw than the gradient pass (exact when dropout is 0, as in
Llama-family models). The Trainer's logged ``loss`` is then Σ w_i·ℓ_i (the loss expected under the worst-case
weights), which equals the aggregate for ``mean`` and ``group`` but not for ``dv`` (a log-sum-exp).
Not covered: DeepSpeed (its engine scales by accumulation itself) and FSDP's resharded LM head — untested.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch import Tensor


@dataclass
class MicroPlan:
    """One micro-batch's share of the window plan: its rows' weights, the process-count scale, the retain token total."""

    weights: Tensor
    scale: float
    retain_tokens_total: int | None = None
    log_rows: dict[str, list] = field(default_factory=dict)


def gather_cat(local: Tensor) -> Tensor:
    """Concatenate a 1-D tensor over all processes in rank order (sizes may differ across ranks)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return local
    parts: list[Tensor | None] = [None] * dist.get_world_size()
    dist.all_gather_object(parts, local.detach().cpu())
    return torch.cat([p for p in parts if p is not None]).to(local.device)


def rank_offset(local_size: int) -> int:
    """How many entries the lower ranks contributed to :func:`gather_cat`."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return 0
    sizes: list[int | None] = [None] * dist.get_world_size()
    dist.all_gather_object(sizes, local_size)
    return int(sum(s for s in sizes[: dist.get_rank()] if s is not None))


def split_weights(weights: Tensor, sizes: list[int], offset: int) -> list[Tensor]:
    """The local micro-batches' slices of the global weight vector."""
    out, start = [], offset
    for n in sizes:
        out.append(weights[start : start + n])
        start += n
    return out
