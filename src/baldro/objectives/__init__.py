"""Per-sample unlearning objectives. ``build(name, **params)`` returns an :class:`Objective`.

Names: ``ga``, ``npo``, ``simnpo``, ``satimp``, ``wga``, ``idk_nll``, ``idk_dpo``. Adding one = one file that
registers itself with ``@OBJECTIVES.register(name)``: every module here is imported below.
"""

from __future__ import annotations

from typing import Any

from baldro.core.registry import import_modules
from baldro.objectives.base import OBJECTIVES, ForgetInputs, Objective

import_modules(__name__, __path__)  # each module registers its components


def build(name: str, **params: Any) -> Objective:
    """Build an objective from its config name and parameters, e.g. ``build("npo", beta=0.1)``."""
    return OBJECTIVES.build(name, **params)


def names() -> list[str]:
    return OBJECTIVES.names()


__all__ = ["OBJECTIVES", "ForgetInputs", "Objective", "build", "names"]
