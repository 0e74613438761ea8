"""Where the DRO weights are computed: two small strategies, each owning its plan, its loss scaling and its NLL.

``micro`` (:class:`MicroScope`, open-unlearning's and the released code's behaviour) aggregates each device
micro-batch on its own; for BalDRO-G it ranks the micro-batch and runs autograd on the kept rows only, in one pass
or two (:mod:`baldro.training.group_plan`: whichever costs fewer FLOPs for the model). ``global`` (:class:`GlobalScope`) aggregates the
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
Tested under DDP, FSDP1 and FSDP2 (2 gloo processes equal one, tests/training/test_scaleout.py); DeepSpeed (whose
engine scales by the accumulation itself) only by benchmarks/scaleout_gpu_check.py, on a GPU machine.

The strategies see the Trainer only through a :class:`~baldro.training.scope_context.ScopeContext` (the loss, the
per-sample pieces, the metrics sink, the NaN check, the accumulation arithmetic), built by the Trainer for each call.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from baldro.composition import LossOutput
from baldro.core.labels import IGNORE_INDEX
from baldro.objectives import ForgetInputs
from baldro.training.group_plan import choose_plan
from baldro.training.scope_context import ScopeContext

SCOPES = ("micro", "global")


@dataclass
class MicroPlan:
    """One micro-batch's share of the window plan: its rows' weights, the process-count scale, the retain token total."""

    weights: Tensor
    scale: float
    retain_tokens_total: int | None = None


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


def weighted_loss(
    ctx: ScopeContext,
    model: nn.Module,
    inputs: dict[str, Any],
    weights: Tensor,
    retain_tokens_total: int | None,
    forget_all: ForgetInputs | None = None,
) -> LossOutput:
    """``UnlearnLoss`` with the weights fixed in advance: Σ_i w_i·ℓ_i with autograd (for a sparse aggregator only on
    the rows with w_i > 0 — finding them waits for the device) plus the retain term, its token mean scaled to this
    micro-batch's share of ``retain_tokens_total`` when given. ``forget_all``: every row's inputs, already computed
    with autograd (BalDRO-G's one-pass plan); the kept rows are selected from them instead of being run again."""
    lf = ctx.loss_fn
    rows = None
    if lf.sparse:
        rows = (weights > 0).nonzero().flatten()
        if rows.numel() == weights.numel():
            rows = None
        elif rows.numel() == 0:  # no kept row here (global scope): a zero-weighted row keeps the graph connected
            rows = torch.zeros(1, dtype=torch.long, device=weights.device)
    if forget_all is None:
        forget = ctx.forget_inputs(model, inputs, rows)
    else:
        forget = forget_all if rows is None else forget_all.select(rows)
    retain = ctx.retain_inputs(model, inputs["retain"]) if lf.has_retain else None
    share = 1.0
    if retain is not None and retain_tokens_total is not None:
        share = int(retain.stats.n_tokens.sum()) / max(retain_tokens_total, 1)
    return lf(forget, retain, weights=weights, rows=rows, retain_share=share)


def detached_losses(ctx: ScopeContext, model: nn.Module, inputs: dict[str, Any]) -> tuple[Tensor, Tensor]:
    """(ℓ, token-mean NLL) of every forget row without autograd — the ranking / pre-pass."""
    with torch.no_grad():
        forget = ctx.forget_inputs(model, inputs)
        return ctx.loss_fn.objective(forget).detach(), forget.stats.nll_mean.detach()


class MicroScope:
    """Aggregate each device micro-batch on its own."""

    name = "micro"

    def plan_window(self, ctx: ScopeContext, model: nn.Module, batch_samples: list[dict[str, Any]]) -> None:
        """Nothing to plan ahead."""

    def loss(self, ctx: ScopeContext, model: nn.Module, inputs: dict[str, Any]) -> LossOutput:
        lf = ctx.loss_fn
        if lf.sparse:
            forget_all = None
            if choose_plan(ctx.group_plan, model, inputs["forget"], lf.aggregator) == "one-pass":
                forget_all = ctx.forget_inputs(model, inputs)  # autograd on every row, ranked without it
                with torch.no_grad():
                    ell, nll = lf.objective(forget_all).detach(), forget_all.stats.nll_mean.detach()
            else:
                ell, nll = detached_losses(ctx, model, inputs)
            out = weighted_loss(ctx, model, inputs, lf.plan(ell, nll), None, forget_all)
            out.per_sample, out.nll = ell, nll  # log every row's loss, not only the kept ones'
        else:
            forget = ctx.forget_inputs(model, inputs)
            retain = ctx.retain_inputs(model, inputs["retain"]) if lf.has_retain else None
            out = lf(forget, retain)
        if model.training:
            divisor, window = ctx.ga_divisor(), ctx.window_size()
            if divisor != window:
                out.total = out.total * (divisor / window)  # the mean over the window's micro-batches
            ctx.record_batch(
                inputs["forget"]["index"], out.per_sample, out.weights, out.nll, out.stats, out.forget_loss
            )
        return out


class GlobalScope(MicroScope):
    """Aggregate over the whole effective batch (every micro-batch of the accumulation window on every process).

    :meth:`plan_window` runs when the Trainer fetches a window and queues one :class:`MicroPlan` per micro-batch, in
    order; :meth:`loss` takes them in the same order. Outside training (or with no plan queued) it falls back to the
    micro scope."""

    name = "global"

    def __init__(self) -> None:
        self.plans: deque[MicroPlan] = deque()

    def plan_window(self, ctx: ScopeContext, model: nn.Module, batch_samples: list[dict[str, Any]]) -> None:
        lf = ctx.loss_fn
        was_training = model.training
        model.train()
        losses, nlls, indices, sizes, retain_tokens = [], [], [], [], 0
        for batch in batch_samples:
            prepared = ctx.prepare_inputs(batch)
            ell, nll = detached_losses(ctx, model, prepared)
            losses.append(ell.float())
            nlls.append(nll.float())
            indices.append(prepared["forget"]["index"])
            sizes.append(ell.numel())
            if "retain" in prepared:
                retain_tokens += int((prepared["retain"]["labels"][:, 1:] != IGNORE_INDEX).sum())
        model.train(was_training)
        local = torch.cat(losses)
        all_losses, all_nll = gather_cat(local), gather_cat(torch.cat(nlls))
        all_index = gather_cat(torch.cat(indices))
        ctx.check_finite(all_losses.sum(), all_index[~torch.isfinite(all_losses)])
        value, weights = lf.aggregator(all_losses, nll=all_nll)
        weights = weights.detach()
        retain_total = int(gather_cat(torch.tensor([retain_tokens], device=local.device)).sum())
        scale = float(ctx.num_processes)
        for w in split_weights(weights, sizes, rank_offset(local.numel())):
            self.plans.append(MicroPlan(weights=w, scale=scale, retain_tokens_total=retain_total))
        stats = dict(lf.aggregator.last_stats)
        ctx.record_batch(all_index, all_losses, weights, all_nll, stats, value.detach(), gathered=True)

    def loss(self, ctx: ScopeContext, model: nn.Module, inputs: dict[str, Any]) -> LossOutput:
        if not (model.training and self.plans):
            return super().loss(ctx, model, inputs)
        plan = self.plans.popleft()
        out = weighted_loss(ctx, model, inputs, plan.weights, plan.retain_tokens_total)
        out.total = out.total * plan.scale * ctx.ga_divisor()
        out.per_sample = plan.weights.new_zeros(0)  # logged with the plan, over the whole window
        return out


def build_scope(name: str) -> MicroScope:
    if name not in SCOPES:
        raise ValueError(f"dro_scope must be 'micro' or 'global', got {name!r}")
    return GlobalScope() if name == "global" else MicroScope()
