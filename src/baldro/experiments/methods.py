"""Method presets: ``<base>[+<variant>]`` names → the ``objective`` / ``aggregator`` / ``retain`` config sections.

Bases: ``ga`` (gradient ascent, no retain term), ``graddiff`` (GA + retain NLL), ``npo``, ``simnpo``, ``satimp``,
``wga``, ``idk_dpo`` (each with the retain NLL, λ = 1). Variants: none (mean), ``g`` (BalDRO-G, ratio 0.5, ranked
as the objective declares: by likelihood for satimp and wga), ``dv`` (BalDRO-DV, paper sign, β = 2; β on the loss's
scale for satimp, 0.005, and wga, 0.1, whose per-sample losses lie in [−0.018, 0] and [−0.37, 0]), ``dv-official``
(the released code's sign), ``kl_radius`` (ρ = 0.1), ``chi2`` (τ = 1).
E.g. ``npo``, ``npo+g``, ``npo+dv``, ``npo+dv-official``, ``simnpo+kl_radius``.
"""

from __future__ import annotations

import copy
from typing import Any

from baldro.errors import ConfigError

BASES: dict[str, dict[str, Any]] = {
    "ga": {"objective": {"name": "ga"}, "retain": None},
    "graddiff": {"objective": {"name": "ga"}, "retain": {"name": "nll", "weight": 1.0}},
    "npo": {"objective": {"name": "npo", "beta": 0.1}, "retain": {"name": "nll", "weight": 1.0}},
    "simnpo": {"objective": {"name": "simnpo", "beta": 4.5, "delta": 0.0}, "forget_weight": 0.125,
               "retain": {"name": "nll", "weight": 1.0}},
    "satimp": {"objective": {"name": "satimp", "beta1": 5.0, "beta2": 1.0}, "forget_weight": 0.1,
               "retain": {"name": "nll", "weight": 1.0}},
    "wga": {"objective": {"name": "wga", "beta": 1.0}, "retain": {"name": "nll", "weight": 1.0}},
    "idk_dpo": {"objective": {"name": "idk_dpo", "beta": 0.1}, "retain": {"name": "nll", "weight": 1.0}},
}
VARIANTS: dict[str, dict[str, Any]] = {
    "": {"name": "mean"},
    "g": {"name": "group", "ratio": 0.5},
    "dv": {"name": "dv", "beta": 2.0, "sign": "paper"},
    "dv-official": {"name": "dv", "beta": 2.0, "sign": "official"},
    "kl_radius": {"name": "kl_radius", "rho": 0.1},
    "chi2": {"name": "chi2", "tau": 1.0},
}
DV_BETA: dict[str, float] = {"satimp": 0.005, "wga": 0.1}  # β on the per-sample loss's scale (docs/compat.md)
DEFAULT_METHODS = ("npo", "npo+g", "npo+dv", "npo+dv-official")


def method_names() -> list[str]:
    return [b + (f"+{v}" if v else "") for b in BASES for v in VARIANTS]


def method_config(name: str) -> dict[str, Any]:
    """The config sections of a method preset; ConfigError naming the known bases and variants otherwise."""
    base, _, variant = name.partition("+")
    if base not in BASES or variant not in VARIANTS:
        raise ConfigError(
            f"unknown method {name!r}: use <base>[+<variant>] with base in {', '.join(BASES)} and variant in "
            f"{', '.join(v for v in VARIANTS if v)} (e.g. npo+dv)"
        )
    cfg = copy.deepcopy(BASES[base])
    cfg["aggregator"] = copy.deepcopy(VARIANTS[variant])
    if cfg["aggregator"]["name"] == "dv" and base in DV_BETA:
        cfg["aggregator"]["beta"] = DV_BETA[base]
    if cfg["aggregator"]["name"] == "group":
        from baldro import objectives

        objective = dict(cfg["objective"])
        cfg["aggregator"]["rank_by"] = objectives.build(objective.pop("name"), **objective).rank_by
    return cfg


def base_method(method: str) -> str:
    """The method a variant is tested against: the part before ``+`` (npo+dv → npo)."""
    return method.partition("+")[0]
