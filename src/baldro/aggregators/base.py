"""The aggregator interface: a reduction of per-sample losses ``[B]`` to a scalar plus its effective weights."""

from __future__ import annotations

from typing import Any, ClassVar

from torch import Tensor

from baldro.core.registry import Registry


class Aggregator:
    """Calling an aggregator on ``losses: Tensor[B]`` returns ``(loss: Tensor[], weights: Tensor[B])``.

    ``weights`` is detached, non-negative, sums to 1 and equals ∂loss/∂losses: the effective worst-case distribution
    Q over the batch. ``nll`` (per-sample mean NLL) is only read by aggregators that rank by likelihood.
    ``last_stats`` holds scalars worth logging from the last call (e.g. ``beta_star``). ``sparse``: the weights are
    zero on some rows, so a trainer may run autograd only on the others (BalDRO-G).
    """

    sparse: ClassVar[bool] = False
    last_stats: dict[str, float]

    def __call__(self, losses: Tensor, *, nll: Tensor | None = None) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """The build parameters, so that ``build(name, **agg.config())`` rebuilds it (``last_stats`` excluded)."""
        from dataclasses import fields

        return {f.name: getattr(self, f.name) for f in fields(self) if f.init}  # type: ignore[arg-type]


AGGREGATORS: Registry[Aggregator] = Registry("aggregator")


def check_losses(losses: Tensor) -> None:
    if losses.dim() != 1 or losses.numel() == 0:
        raise ValueError(f"aggregators take a non-empty 1-D loss vector [B], got shape {tuple(losses.shape)}")
