"""Per-sample unlearning objectives. ``build(name, **params)`` returns an :class:`Objective`.

Names: ``ga``, ``npo``, ``simnpo``, ``satimp``, ``wga``, ``idk_nll``, ``idk_dpo``. Adding one = one file that
registers itself with ``@OBJECTIVES.register(name)`` + one import line below.
"""

from __future__ import annotations

from typing import Any

from baldro.objectives import ga, idk, npo, satimp, simnpo, wga  # noqa: F401  (registration)
from baldro.objectives.base import OBJECTIVES, ForgetInputs, Objective


def build(name: str, **params: Any) -> Objective:
    """Build an objective from its config name and parameters, e.g. ``build("npo", beta=0.1)``."""
    return OBJECTIVES.build(name, **params)


def names() -> list[str]:
    return OBJECTIVES.names()


__all__ = ["OBJECTIVES", "ForgetInputs", "Objective", "build", "names"]
