"""What a DRO-scope strategy (:mod:`baldro.training.dro_scope`) may use of the Trainer, and nothing more: the loss,
the per-sample pieces of a batch, the metrics sink, the NaN check, the gradient-accumulation arithmetic, the batch
preparation and the process count.

``UnlearnTrainer.scope_context()`` builds one for each call from its own attributes (so a wrapper set on the
instance, as the tests' spies are, is the one the strategy calls); the strategies never import the Trainer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from torch import Tensor, nn

from baldro.composition import UnlearnLoss
from baldro.objectives import ForgetInputs
from baldro.retain import RetainInputs


class ForgetInputsFn(Protocol):
    """The objective's inputs on the forget batch (optionally only ``rows``), with autograd as the caller sets."""

    def __call__(self, model: nn.Module, inputs: dict[str, Any], rows: Tensor | None = None) -> ForgetInputs: ...


class RecordBatchFn(Protocol):
    """Metrics and ``per_sample.jsonl`` rows of one aggregation (``gathered``: every process's rows already)."""

    def __call__(
        self,
        index: Tensor,
        per_sample: Tensor,
        weights: Tensor,
        nll: Tensor | None,
        stats: dict[str, float],
        forget_loss: Tensor,
        gathered: bool = False,
    ) -> None: ...


@dataclass(frozen=True)
class ScopeContext:
    """The Trainer as a DRO-scope strategy sees it.

    ``loss_fn``: the ``UnlearnLoss`` (its objective, aggregator and retain term); ``group_plan``: BalDRO-G in one
    pass or two (:mod:`baldro.training.group_plan`); ``forget_inputs`` / ``retain_inputs``: the per-sample pieces
    (:mod:`baldro.training.loss_inputs`); ``record_batch``: logs one aggregation; ``check_finite(total, index)``:
    raises on a NaN/inf total naming the rows; ``ga_divisor()`` / ``window_size()``: what the Trainer divides the
    loss by and the micro-batch count of this accumulation window; ``prepare_inputs``: the Trainer's move of a
    fetched batch to the device; ``num_processes``: the data-parallel process count."""

    loss_fn: UnlearnLoss
    group_plan: str
    forget_inputs: ForgetInputsFn
    retain_inputs: Callable[[nn.Module, dict[str, Tensor]], RetainInputs]
    record_batch: RecordBatchFn
    check_finite: Callable[[Tensor, Tensor], None]
    ga_divisor: Callable[[], int]
    window_size: Callable[[], int]
    prepare_inputs: Callable[[dict[str, Any]], dict[str, Any]]
    num_processes: int
