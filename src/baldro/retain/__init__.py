"""Retain terms: ``nll`` and ``kl``. ``build(name, **params)`` returns a :class:`RetainTerm`."""

from __future__ import annotations

from typing import Any

from baldro.core.registry import import_modules
from baldro.retain.base import RETAIN_TERMS, RetainInputs, RetainTerm

import_modules(__name__, __path__)  # each module registers its components


def build(name: str, **params: Any) -> RetainTerm:
    """Build a retain term from its config name, e.g. ``build("nll")``."""
    return RETAIN_TERMS.build(name, **params)


def names() -> list[str]:
    return RETAIN_TERMS.names()


__all__ = ["RETAIN_TERMS", "RetainInputs", "RetainTerm", "build", "names"]
