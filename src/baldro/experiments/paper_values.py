"""The numbers the BalDRO paper reports, read from ``paper_values.csv`` (beside this file; ``#`` lines are comments).

Each row: ``table`` (e.g. ``Table 1``), ``benchmark`` (tofu | muse), ``split`` (forget01 … or News / Books), ``row``
(the paper's row label: ``Original``, ``Retain``, ``NPO+BalDRO-DV``, …), ``metric`` (baldro's summary key, e.g.
``forget_quality``) and ``value``. The file's header says where the values were transcribed from.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from baldro.errors import DataError

PAPER_VALUES = Path(__file__).with_name("paper_values.csv")
COLUMNS = ("table", "benchmark", "split", "row", "metric", "value")


@dataclass(frozen=True)
class PaperValue:
    table: str
    benchmark: str
    split: str
    row: str
    metric: str
    value: float


def read_paper_values(path: str | Path = PAPER_VALUES) -> list[PaperValue]:
    """Every value of the file; a malformed line is a DataError naming the file, line and field."""
    path = Path(path)
    lines = [(n, line) for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if line.strip() and not line.startswith("#")]
    if not lines or tuple(lines[0][1].split(",")) != COLUMNS:
        raise DataError(f"{path}: the first non-comment line must be the header {','.join(COLUMNS)}")
    out: list[PaperValue] = []
    seen: set[tuple[str, ...]] = set()
    for (n, _), fields in zip(lines[1:], csv.reader(line for _, line in lines[1:])):
        if len(fields) != len(COLUMNS):
            raise DataError(f"{path}:{n}: expected {len(COLUMNS)} fields ({','.join(COLUMNS)}), got {len(fields)}")
        try:
            value = float(fields[5])
        except ValueError:
            raise DataError(f"{path}:{n}: field value {fields[5]!r} is not a number") from None
        if not math.isfinite(value):
            raise DataError(f"{path}:{n}: field value {fields[5]!r} must be finite")
        key = tuple(fields[:5])
        if key in seen:
            raise DataError(f"{path}:{n}: {'/'.join(fields[1:5])} of {fields[0]} is given twice")
        seen.add(key)
        out.append(PaperValue(*fields[:5], value))
    return out


def lookup(values: list[PaperValue], benchmark: str, split: str, row: str) -> dict[str, tuple[float, str]]:
    """``{metric: (value, table)}`` the paper reports for ``row`` on ``benchmark`` / ``split``."""
    return {v.metric: (v.value, v.table) for v in values
            if (v.benchmark, v.split, v.row) == (benchmark, split, row)}


__all__ = ["PAPER_VALUES", "PaperValue", "lookup", "read_paper_values"]
