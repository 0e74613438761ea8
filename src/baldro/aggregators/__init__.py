"""DRO aggregators over per-sample losses. ``build(name, **params)`` returns an :class:`Aggregator`.

Names: ``mean``, ``group`` (BalDRO-G), ``dv`` (BalDRO-DV), ``kl_radius``, ``chi2``. Adding one = one file that
registers itself with ``@AGGREGATORS.register(name)``: every module here is imported below.
"""

from __future__ import annotations

from typing import Any

from baldro.aggregators.base import AGGREGATORS, Aggregator
from baldro.aggregators.dv import dv_aggregate
from baldro.aggregators.group import group_select
from baldro.core.registry import import_modules

import_modules(__name__, __path__)  # each module registers its components


def build(name: str, **params: Any) -> Aggregator:
    """Build an aggregator from its config name and parameters, e.g. ``build("dv", beta=2.0)``."""
    return AGGREGATORS.build(name, **params)


def names() -> list[str]:
    return AGGREGATORS.names()


__all__ = ["AGGREGATORS", "Aggregator", "build", "dv_aggregate", "group_select", "names"]
