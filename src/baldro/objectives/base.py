"""The objective interface: a per-sample forget loss vector ``[B]`` from the model's answer statistics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from torch import Tensor

from baldro.core.registry import Registry
from baldro.core.sequence import SequenceStats


@dataclass
class ForgetInputs:
    """What an objective may read about a forget batch.

    ``stats``: the model's answer statistics on the forget answers. ``ref_logp``: log π_ref(y|x) summed over answer
    tokens [B] (a cached value or a live reference model, interchangeably). ``idk_stats`` / ``ref_idk_logp``: the same
    for the refusal answers supplied by the data layer.
    """

    stats: SequenceStats
    ref_logp: Tensor | None = None
    idk_stats: SequenceStats | None = None
    ref_idk_logp: Tensor | None = None


class Objective:
    """Calling an objective on :class:`ForgetInputs` returns the per-sample losses ``[B]`` (lower = more forgotten)."""

    needs_reference: ClassVar[bool] = False
    needs_idk: ClassVar[bool] = False

    def __call__(self, inputs: ForgetInputs) -> Tensor:
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)  # type: ignore[call-overload]


OBJECTIVES: Registry[Objective] = Registry("objective")


def need(value: Tensor | SequenceStats | None, what: str, objective: str) -> Any:
    if value is None:
        raise ValueError(f"objective {objective!r} needs {what}")
    return value
