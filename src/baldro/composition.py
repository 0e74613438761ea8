"""The unlearning loss as a composition: objective × aggregator × retain term — the only place the formula lives.

    total = γ · aggregate(objective(forget batch)) + λ · s · retain(retain batch)

Naming: ``forget_weight`` = γ (open-unlearning's ``gamma``; the paper fixes it to 1) and ``retain_weight`` = λ (the
paper's λ; open-unlearning's ``alpha``). With ``retain_aggregator`` set, the retain term is the aggregate of its
per-sample values instead of its token mean (the paper's ablation of DRO on the retain side).

Two ways to aggregate, the same gradient:
- *dense*: the aggregator runs on the per-sample losses ℓ of this batch;
- *with weights fixed in advance* (``weights=w``): the forget part is the surrogate Σ_i w_i·ℓ_i, whose gradient is the
  aggregator's when w = ∂L/∂ℓ at the same ℓ (Danskin / the chain rule). The trainer uses it for BalDRO-G (``w`` from a
  no-grad ranking pass; ``rows`` = the kept rows, the only ones run with autograd) and for ``dro_scope: global``
  (``w`` from the whole effective batch; ``retain_share`` s = this micro-batch's share of the window's retain tokens).

Hardness ranking: a ``group`` aggregator with ``rank_by="auto"`` takes the objective's declared ranking
(``Objective.rank_by``: likelihood for satimp / wga, loss otherwise); an explicit ``rank_by="loss"`` with an
objective whose loss is not monotone in hardness is refused (ValueError).

Released-code options (set together by ``compat: released``, see docs/compat.md): ``forget_unit="token"`` runs the
aggregator over the per-token losses of the whole batch instead of per-sample losses (DrSatImp's DV); a sample's
weight is then the sum of its tokens' weights. ``retain_rows="kept"`` evaluates the retain term on a uniformly random
subset of as many retain rows as forget rows carry weight (the Group trainers' ``compute_retain_group``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

from baldro.aggregators import Aggregator
from baldro.aggregators.group import GroupAggregator
from baldro.objectives import ForgetInputs, Objective
from baldro.retain import RetainInputs, RetainTerm

QUANTILES = (0.1, 0.5, 0.9)


@dataclass
class LossOutput:
    """The total loss and what is worth logging: forget/retain parts, per-sample losses, DRO weights (detached)."""

    total: Tensor
    forget_loss: Tensor
    retain_loss: Tensor | None
    per_sample: Tensor
    weights: Tensor
    nll: Tensor | None = None
    stats: dict[str, float] = field(default_factory=dict)
    retain_share: float = 1.0


def weight_statistics(weights: Tensor) -> dict[str, float]:
    """Summaries of a DRO weight vector w (Σw = 1): effective sample size 1/Σw² (B for uniform weights, k for
    BalDRO-G's k kept rows), the largest weight, the entropy −Σ w log w (log B when uniform) and the kept fraction
    (share of rows with w > 0)."""
    w = weights.detach().double()
    if w.numel() == 0:
        return {}
    positive = w[w > 0]
    return {
        "ess": float(1.0 / (w * w).sum()) if positive.numel() else math.nan,
        "max_weight": float(w.max()),
        "weight_entropy": float(-(positive * positive.log()).sum()),
        "kept_fraction": float(positive.numel() / w.numel()),
    }


def loss_quantiles(per_sample: Tensor) -> dict[str, float]:
    """The 10/50/90 % quantiles (linear interpolation) and the plain mean of per-sample forget losses."""
    x = per_sample.detach().double().flatten()
    if x.numel() == 0:
        return {}
    q = torch.quantile(x, torch.tensor(QUANTILES, dtype=x.dtype, device=x.device)).tolist()
    out = {f"loss_q{round(100 * p)}": v for p, v in zip(QUANTILES, q)}
    out["loss_mean"] = float(x.mean())
    return out


@dataclass
class UnlearnLoss:
    objective: Objective
    aggregator: Aggregator
    retain: RetainTerm | None = None
    forget_weight: float = 1.0
    retain_weight: float = 1.0
    retain_aggregator: Aggregator | None = None
    forget_unit: str = "sample"
    retain_rows: str = "all"

    def __post_init__(self) -> None:
        if self.forget_unit not in FORGET_UNITS:
            raise ValueError(f"invalid forget_unit={self.forget_unit!r}: must be one of {', '.join(FORGET_UNITS)}")
        if self.retain_rows not in RETAIN_ROWS:
            raise ValueError(f"invalid retain_rows={self.retain_rows!r}: must be one of {', '.join(RETAIN_ROWS)}")
        self.aggregator = resolve_ranking(self.objective, self.aggregator)
        if self.forget_unit == "token" and type(self.objective).token_losses is Objective.token_losses:
            raise ValueError(
                f"forget_unit 'token' needs an objective defined per token (satimp, wga), not {type(self.objective).__name__}"
            )
        if self.forget_unit == "token" and self.sparse:
            raise ValueError("forget_unit='token' does not work with the group aggregator (it keeps whole rows)")

    @property
    def sparse(self) -> bool:
        """Whether the aggregator's weights are zero on some rows, so only the others need autograd."""
        return bool(getattr(self.aggregator, "sparse", False))

    @property
    def has_retain(self) -> bool:
        return self.retain is not None and self.retain_weight != 0

    def plan(self, per_sample: Tensor, nll: Tensor | None = None) -> Tensor:
        """The aggregator's weights w = ∂L/∂ℓ for detached losses (BalDRO-G's ranking pass, the global pre-pass)."""
        _, weights = self.aggregator(per_sample.detach(), nll=None if nll is None else nll.detach())
        return weights.detach()

    def forget_part(self, inputs: ForgetInputs) -> tuple[Tensor, Tensor, Tensor]:
        """(aggregate, per-sample losses, per-sample weights) of the forget batch, aggregated densely."""
        if self.forget_unit == "token":
            stats = inputs.stats
            token_losses = self.objective.token_losses(inputs)
            value, token_weights = self.aggregator(token_losses, nll=stats.token_nll.detach())
            weights = token_weights.new_zeros(stats.batch_size).index_add(0, stats.sample_index, token_weights)
            return value, stats.token_mean(token_losses), weights
        per_sample = self.objective(inputs)
        value, weights = self.aggregator(per_sample, nll=inputs.stats.nll_mean.detach())
        return value, per_sample, weights

    def retain_subset(self, weights: Tensor, retain_batch_size: int, generator: torch.Generator | None = None) -> Tensor | None:
        """Retain rows to use: None (all) unless ``retain_rows="kept"``; then min(k, B_retain) rows drawn uniformly
        without replacement, k = the forget rows with weight > 0 (the released ``randperm(B)[:k]``)."""
        if self.retain_rows == "all":
            return None
        k = min(int((weights > 0).sum()), retain_batch_size)
        return torch.randperm(retain_batch_size, generator=generator)[:k].to(weights.device)

    def global_scope_problem(self) -> str | None:
        """Why this loss cannot run with ``dro_scope="global"`` (None when it can)."""
        if self.retain_aggregator is not None:
            return "retain_aggregator"
        if self.forget_unit != "sample":
            return "forget_unit 'token'"
        if self.retain_rows != "all":
            return "retain_rows 'kept'"
        if getattr(self.retain, "reduction", "token_mean") != "token_mean":
            return "the retain reduction 'sequence_sum'"
        return None

    def retain_value(self, inputs: RetainInputs) -> Tensor:
        assert self.retain is not None
        if self.retain_aggregator is None:
            return self.retain.loss(inputs)
        return self.retain_aggregator(self.retain.per_sample(inputs), nll=inputs.stats.nll_mean.detach())[0]

    def __call__(
        self,
        forget: ForgetInputs,
        retain: RetainInputs | None = None,
        *,
        weights: Tensor | None = None,
        rows: Tensor | None = None,
        retain_share: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> LossOutput:
        """The loss of one batch. ``weights``: fixed weights over the batch's rows (see the module docstring);
        ``rows``: which rows ``forget`` holds when it was computed on a subset (default: all); ``generator``: for
        the random retain rows of ``retain_rows="kept"``."""
        nll = forget.stats.nll_mean.detach()
        if weights is None:
            forget_value, per_sample, weights = self.forget_part(forget)
        else:
            per_sample = self.objective(forget)
            w = weights if rows is None else weights[rows]
            forget_value = (w.to(per_sample.dtype) * per_sample).sum()
        total = self.forget_weight * forget_value
        retain_value = None
        if self.has_retain:
            if retain is None:
                raise ValueError("this loss has a retain term: pass the retain batch's RetainInputs")
            if retain_share != 1.0 and self.retain_aggregator is not None:
                raise ValueError("a retain share (dro_scope: global) does not combine with retain_aggregator")
            subset = self.retain_subset(weights, retain.stats.batch_size, generator)
            retain_value = self.retain_value(retain if subset is None else select_retain(retain, subset)) * retain_share
            total = total + self.retain_weight * retain_value
        return LossOutput(
            total=total,
            forget_loss=forget_value.detach(),
            retain_loss=None if retain_value is None else retain_value.detach(),
            per_sample=per_sample.detach(),
            weights=weights.detach(),
            nll=nll,
            stats=dict(self.aggregator.last_stats),
            retain_share=retain_share,
        )


FORGET_UNITS = ("sample", "token")
RETAIN_ROWS = ("all", "kept")


def resolve_ranking(objective: Objective, aggregator: Aggregator) -> Aggregator:
    """The aggregator with a group ``rank_by="auto"`` replaced by the objective's ranking; ValueError for an explicit
    ``rank_by="loss"`` with an objective whose loss does not measure hardness."""
    if not isinstance(aggregator, GroupAggregator):
        return aggregator
    if aggregator.rank_by == "auto":
        return dataclasses.replace(aggregator, rank_by=objective.rank_by)
    if aggregator.rank_by == "loss" and not objective.loss_is_hardness:
        name = type(objective).__name__
        raise ValueError(
            f"group aggregator rank_by='loss' is meaningless with objective {name}: its loss goes to 0 both for "
            "remembered and for fully forgotten samples; use rank_by: likelihood (or auto)"
        )
    return aggregator


def select_retain(inputs: RetainInputs, rows: Tensor) -> RetainInputs:
    """The retain inputs of the given rows only (statistics and, when present, the per-token KL)."""
    stats = inputs.stats
    token_kl = inputs.token_kl
    if token_kl is not None:  # SequenceStats.select keeps the tokens of the kept rows in their original order
        keep = torch.zeros(stats.batch_size, dtype=torch.bool, device=stats.sample_index.device)
        keep[rows.to(keep.device)] = True
        token_kl = token_kl[keep[stats.sample_index]]
    return RetainInputs(stats=stats.select(rows), token_kl=token_kl)
