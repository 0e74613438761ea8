"""Small layout helpers the report plots share: the Forget Quality log axis, titles that fit, labels that do not collide.

* :func:`fq_log_axis` — FQ is a p-value in (0, 1], drawn on a log axis. Over less than a decade (e.g. every run near
  1) matplotlib labels minor ticks such as "9.99993×10⁻¹"; the axis is widened to whole decades (at least one) so
  only ``10^k`` is labelled.
* :func:`fit_title` — wraps a title to the width of its figure (a one-panel figure is narrower than its title).
* :func:`spread_labels` — vertical offsets (points) for labels at nearby anchor points so that none overlaps another.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from typing import Any

CHAR_WIDTH_EM = 0.55  # mean width of a DejaVu Sans character, in units of the font size (a safe estimate)


def fq_log_axis(ax: Any, values: Sequence[float]) -> tuple[float, float]:
    """Log y axis for the positive finite ``values``: when they span less than a decade, widened to the whole decades
    around them (top ≥ 1, the largest FQ), with a little margin; otherwise matplotlib's limits. Ticks: the decades,
    labelled ``10^k``, minor ticks unlabelled. Returns the limits."""
    from matplotlib.ticker import LogLocator, NullFormatter

    finite = [float(v) for v in values if isinstance(v, int | float) and math.isfinite(v) and v > 0]
    lo = min(finite, default=0.1)
    hi = max(finite, default=1.0)
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(base=10, numticks=12))
    ax.yaxis.set_minor_locator(LogLocator(base=10, subs=tuple(range(2, 10)), numticks=12))
    ax.yaxis.set_minor_formatter(NullFormatter())
    if math.log10(hi / lo) >= 1.0:  # a decade or more: matplotlib's own limits show a labelled decade
        ax.autoscale(axis="y")
        return ax.get_ylim()
    bottom = 10.0 ** math.floor(math.log10(lo) + 1e-9)
    top = max(10.0 ** math.ceil(math.log10(hi) - 1e-9), 1.0)
    if bottom > top / 10:
        bottom = top / 10
    limits = (bottom / 10 ** 0.08, top * 10 ** 0.08)  # markers at a decade (FQ = 1) stay inside the frame
    ax.set_ylim(*limits)
    return limits


def fit_title(text: str, width_in: float, fontsize: float) -> str:
    """``text`` wrapped to lines that fit ``width_in`` inches at ``fontsize`` points."""
    chars = max(int(width_in * 72 / (fontsize * CHAR_WIDTH_EM)), 20)
    return "\n".join(textwrap.wrap(text, chars, break_on_hyphens=False)) or text


def spread_labels(anchors: Sequence[tuple[float, float]], height: float, width: float,
                  base: tuple[float, float] = (3.0, 3.0)) -> list[tuple[float, float]]:
    """Offsets (points) from each anchor (points, any origin) such that no two labels of ``width`` × ``height``
    overlap: each label starts at ``base`` from its anchor and is pushed up past every label placed before it that it
    would overlap (placed from the lowest anchor up)."""
    order = sorted(range(len(anchors)), key=lambda i: (anchors[i][1], anchors[i][0]))
    placed: list[tuple[float, float]] = []  # lower-left corners of the labels placed so far
    offsets: list[tuple[float, float]] = [base] * len(anchors)
    for i in order:
        x, y = anchors[i][0] + base[0], anchors[i][1] + base[1]
        for _ in range(len(placed) + 1):  # each pass moves past at least one more label, or stops
            clash = [py for px, py in placed if abs(px - x) < width and abs(py - y) < height - 1e-6]
            if not clash:
                break
            y = max(clash) + height
        placed.append((x, y))
        offsets[i] = (x - anchors[i][0], y - anchors[i][1])
    return offsets


__all__ = ["fit_title", "fq_log_axis", "spread_labels"]
