"""Which benchmark an ``*_EVAL.json`` belongs to, from its metric names (what ``baldro eval summarize`` checks).

A TOFU file holds metrics only TOFU has (``forget_Q_A_Prob``, ``retain_Truth_Ratio``, ...), a MUSE file metrics only
MUSE has (``forget_knowmem_ROUGE``, ``forget_verbmem_ROUGE``, ...); the MIA, memorisation and privleak entries are
shared and tell nothing. Scoring a file as the other benchmark gives wrong numbers (ROUGE F1 instead of recall, no
Forget Quality), so a file whose metrics contradict the asked (or file-named) benchmark is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from baldro.errors import DataError
from baldro.evaluation.summary import BENCHMARKS, DERIVED, EXPECTED


def own_metrics(benchmark: str) -> tuple[str, ...]:
    """The per-item metrics only ``benchmark`` has."""
    others = {m for b in BENCHMARKS if b != benchmark for m in EXPECTED[b]}
    return tuple(m for m in EXPECTED[benchmark] if m not in others and m not in DERIVED)


def _few(names: list[str]) -> str:
    return ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")


def check_benchmark(eval_json: Mapping[str, Any], path: str | Path, benchmark: str | None = None) -> str:
    """The benchmark of ``eval_json``: ``benchmark`` when given and consistent, else inferred from its metrics.

    :class:`DataError` naming the missing and unexpected metrics when the file holds the other benchmark's metrics,
    both benchmarks' metrics, or neither's; a file named ``TOFU_*`` / ``MUSE_*`` must hold that benchmark's."""
    path = Path(path)
    found = {b: [m for m in own_metrics(b) if m in eval_json] for b in BENCHMARKS}
    present = [b for b in BENCHMARKS if found[b]]
    named = next((b for b in BENCHMARKS if path.name.upper().startswith(f"{b.upper()}_")), None)
    asked = benchmark or named
    if len(present) > 1:
        mixed = "; ".join(f"{b.upper()}: {_few(found[b])}" for b in present)
        raise DataError(f"{path}: holds metrics of more than one benchmark ({mixed}); give one benchmark's file")
    if not present:
        want = asked or "tofu or muse"
        raise DataError(f"{path}: none of the {want.upper()} metrics are in the file (missing: "
                        f"{_few(list(own_metrics(asked or 'tofu')))}); is it an *_EVAL.json?")
    actual = present[0]
    if not any(isinstance(eval_json[m], Mapping) for m in found[actual]):
        raise DataError(f"{path}: a summary (metric → number), not an *_EVAL.json with per-item values; give the "
                        f"{actual.upper()}_EVAL.json written beside it")
    if asked and asked != actual:
        source = "--benchmark" if benchmark else "its name"
        missing = [m for m in own_metrics(asked) if m not in eval_json]
        raise DataError(f"{path}: {source} says {asked.upper()} but the metrics are {actual.upper()}'s (unexpected: "
                        f"{_few(found[actual])}; missing: {_few(missing)}); pass --benchmark {actual} "
                        "or give the right file")
    return actual
