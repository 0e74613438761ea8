"""The retain-term interface: a scalar loss on the retain batch plus its per-sample values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from torch import Tensor

from baldro.core.registry import Registry
from baldro.core.sequence import SequenceStats


@dataclass
class RetainInputs:
    """``stats``: the model's answer statistics on the retain batch. ``token_kl``: KL(π_ref‖π_θ) per answer token,
    aligned with ``stats.token_nll`` (only for terms that need the reference's logits)."""

    stats: SequenceStats
    token_kl: Tensor | None = None


class RetainTerm:
    """``loss(inputs)`` is the scalar retain loss; ``per_sample(inputs)`` its per-sample values ``[B]`` (for the
    optional retain-side aggregator)."""

    needs_reference_logits: ClassVar[bool] = False

    def loss(self, inputs: RetainInputs) -> Tensor:
        raise NotImplementedError

    def per_sample(self, inputs: RetainInputs) -> Tensor:
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)  # type: ignore[call-overload]


RETAIN_TERMS: Registry[RetainTerm] = Registry("retain term")
