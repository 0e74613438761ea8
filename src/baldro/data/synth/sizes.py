"""Named sizes of the embedded benchmark: ``demo`` (the default, what ``baldro demo`` uses), ``study``, ``study-own``.

``study`` (issue 11 item 3) has 100 items in its designed forget split ``forget25``, so the Kolmogorov–Smirnov
p-value behind Forget Quality moves in fine steps, while ``full`` stays small enough for the tiny model to memorise in
minutes: 40 authors x 10 questions, forget splits 1/5/10/25 % → ``forget25`` = 10 authors x 10 facts = 100 rows,
``full`` = 466 rows with seed 0 (400 facts + 66 extra copies of forget facts), ``retain75`` = 300 rows. Same generator
and heterogeneity design as ``demo`` (``--uniform`` removes it the same way). Measured 2026-11-28 (default tiny model,
80 fine-tune epochs): target forget exact match 0.94, target FQ 7.9e-6; NPO does not raise FQ while MU stays
≥ 0.9 x the target's. ``study-own`` is the same size with own forget values (:data:`DESIGNS`): forget and holdout
authors' values, and their perturbed answers, are unused by any retain author; there NPO raises FQ ~50-fold inside
the 0.9 bar, but its forget NLL spread is no wider than on ``--uniform``. Every configuration tried and what it gave:
``docs/study_benchmark.md``.
"""

from __future__ import annotations

from typing import NamedTuple

from baldro.errors import ConfigError


class Size(NamedTuple):
    authors: int
    questions: int
    percents: tuple[int, ...]  # forget splits written; the largest is the designed forget set

    @property
    def forget_split(self) -> str:
        return f"forget{max(self.percents):02d}"


SIZES: dict[str, Size] = {"demo": Size(40, 8, (1, 5, 10)), "study": Size(40, 10, (1, 5, 10, 25)),
                          "study-own": Size(40, 10, (1, 5, 10, 25))}

# Generator options a size turns on (``write_benchmark`` keyword arguments); none for ``demo`` and ``study``.
DESIGNS: dict[str, dict[str, bool]] = {"study-own": {"own_forget_values": True}}


def size_design(name: str) -> dict[str, bool]:
    """The generator options of a named size (``{}`` when it has none)."""
    return dict(DESIGNS.get(name, {}))


def size_preset(name: str) -> Size:
    """The named size; :class:`ConfigError` naming the known sizes otherwise."""
    if name not in SIZES:
        raise ConfigError(f"--size={name!r}: unknown benchmark size; use one of {', '.join(SIZES)}")
    return SIZES[name]
