"""Drawing fictitious authors: one value per fact type, from the pools of :mod:`baldro.data.synth.facts`.

Heterogeneous mode: pools of fact types marked ``shared`` are drawn from a Zipf-like law over a shuffled pool
(weight of rank r ∝ 1/(r+1)^1.1 over the first 40 values), so a few values (a genre, a town, a parent's occupation)
are shared by many authors; the other pools are drawn without replacement. Uniform mode (``uniform=True``) draws every
pool without replacement, so no two authors share any value.

Own forget values (``own_from``, heterogeneous mode only): authors from index ``own_from`` on (the designed forget
and holdout authors) draw shared pools from the next ``ZIPF_SUPPORT`` values of the shuffled pool instead, with the
same law, so no retain author has any of their values (pools drawn without replacement are disjoint anyway).
``own_authors`` names those authors one by one instead (a mixed design: only some forget authors own their values).
"""

from __future__ import annotations

import random
from collections.abc import Container

from baldro.data.synth.facts import FACT_TYPES, build_pools
from baldro.errors import ConfigError

ZIPF_EXPONENT = 1.1
ZIPF_SUPPORT = 40


class _Sampler:
    """Draws values of one pool: without replacement, or (``shared``) from a fixed Zipf-like law."""

    def __init__(self, name: str, pool: tuple[str, ...], rng: random.Random, shared: bool) -> None:
        self.name = name
        self.rng = rng
        self.order = list(pool)
        rng.shuffle(self.order)
        self.shared = shared
        support = min(ZIPF_SUPPORT, len(self.order))
        self.weights = [1.0 / (r + 1) ** ZIPF_EXPONENT for r in range(support)]

    def draw(self, own: bool = False) -> str:
        if self.shared:
            start = len(self.weights) if own else 0
            return self.rng.choices(self.order[start : start + len(self.weights)], weights=self.weights)[0]
        if not self.order:
            raise ConfigError(
                f"too many authors for the {self.name!r} value pool without repeats; use fewer --authors"
            )
        return self.order.pop()


def draw_authors(
    rng: random.Random, count: int, uniform: bool, own_from: int | None = None,
    own_authors: Container[int] | None = None,
) -> list[dict[str, str]]:
    """``count`` authors, each a dict ``{fact key: value}`` covering every fact type (asked or not); authors from
    index ``own_from`` on, or the indices in ``own_authors``, draw shared pools from values the others never draw
    (module docstring). The random draws are the same whichever authors own their values."""
    pools = build_pools()
    shared_pools = set() if uniform else {f.pool for f in FACT_TYPES if f.shared}
    samplers = {name: _Sampler(name, pool, rng, name in shared_pools) for name, pool in sorted(pools.items())}
    if uniform:
        owned: Container[int] = ()
    elif own_authors is not None:
        owned = own_authors
    else:
        owned = range(count if own_from is None else own_from, count)
    return [{fact.key: samplers[fact.pool].draw(a in owned) for fact in FACT_TYPES} for a in range(count)]
