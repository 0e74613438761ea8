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

    def select(self, rows: Tensor) -> ForgetInputs:
        """The inputs of the given rows only (in that order); indexing keeps autograd, with exact zero gradients
        for the rows left out."""
        return ForgetInputs(
            stats=self.stats.select(rows),
            ref_logp=None if self.ref_logp is None else self.ref_logp[rows.to(self.ref_logp.device)],
            idk_stats=None if self.idk_stats is None else self.idk_stats.select(rows),
            ref_idk_logp=None if self.ref_idk_logp is None else self.ref_idk_logp[rows.to(self.ref_idk_logp.device)],
        )


class Objective:
    """Calling an objective on :class:`ForgetInputs` returns the per-sample losses ``[B]``.

    ``loss_is_hardness`` declares how BalDRO-G measures a sample's hardness (how much is left to forget) for this
    objective: ``True`` when the loss is monotone in it (higher loss = harder: GA, NPO, SimNPO, IdkDPO, ...);
    ``False`` when it is not — SatImp's p^β1·(1−p)^β2·log p and WGA's p^β·log p go to 0 both when a sample is
    remembered (p → 1) and when it is fully forgotten (p → 0) — and hardness is then the likelihood (lowest mean NLL
    = hardest), as the released BalDRO code's Group trainers rank. :attr:`rank_by` is the ranking this implies.
    """

    needs_reference: ClassVar[bool] = False
    needs_idk: ClassVar[bool] = False
    loss_is_hardness: ClassVar[bool] = True

    @property
    def rank_by(self) -> str:
        """The BalDRO-G ranking key this objective implies: ``"loss"`` or ``"likelihood"``."""
        return "loss" if self.loss_is_hardness else "likelihood"

    def __call__(self, inputs: ForgetInputs) -> Tensor:
        raise NotImplementedError

    def token_losses(self, inputs: ForgetInputs) -> Tensor:
        """Per-token losses aligned with ``inputs.stats.token_nll`` (objectives defined per token only); the unit of
        a DRO aggregator over tokens (``UnlearnLoss(forget_unit="token")``)."""
        raise ValueError(
            f"objective {type(self).__name__} has no per-token loss; forget_unit 'token' needs satimp or wga"
        )

    def config(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)  # type: ignore[call-overload]


OBJECTIVES: Registry[Objective] = Registry("objective")


def need(value: Tensor | SequenceStats | None, what: str, objective: str) -> Any:
    if value is None:
        raise ValueError(f"objective {objective!r} needs {what}")
    return value
