"""Named sizes of the embedded benchmark: ``demo`` (the default, what ``baldro demo`` uses) and ``study``.

``study`` has ≥ 100 ``forget10`` items, so the Kolmogorov–Smirnov p-value behind Forget Quality moves in fine steps
(issue 11 item 3): 100 authors x 10 questions → ``forget10`` = 10 authors x 10 facts = 100 rows, ``full`` = 1 096
rows with seed 0 (1 000 facts + 96 extra copies of forget facts), ``retain90`` = 900 rows. Same generator, same
heterogeneity design as ``demo`` (``--uniform`` removes it the same way). How it was chosen, and what each size gave
when measured: ``docs/study_benchmark.md``.
"""

from __future__ import annotations

from baldro.errors import ConfigError

SIZES: dict[str, tuple[int, int]] = {"demo": (40, 8), "study": (100, 10)}
"""``name → (authors, questions per author)``."""


def size_preset(name: str) -> tuple[int, int]:
    """``(authors, questions)`` of a named size; :class:`ConfigError` naming the known sizes otherwise."""
    if name not in SIZES:
        raise ConfigError(f"--size={name!r}: unknown benchmark size; use one of {', '.join(SIZES)}")
    return SIZES[name]
