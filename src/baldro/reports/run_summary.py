"""``summary.json`` of a set of runs and its terminal table (mean ± std over seeds, one legend line per column).

The per-method means and standard deviations come from :func:`baldro.reports.tables.method_table`, the same numbers
``report.md`` shows.
"""

from __future__ import annotations

import math
from typing import Any

from baldro.reports.records import RunRecord
from baldro.reports.tables import METRIC_DOCS, method_table, run_metrics

HEADLINE = ("forget_quality", "model_utility", "forget_truth_ratio", "privleak", "final_loss_iqr", "final_nll_iqr")
PER_SAMPLE = ("final_loss_iqr", "final_nll_iqr")
TABLE_COLUMNS = ("forget_quality", "model_utility", "forget_truth_ratio", "privleak", "final_loss_iqr",
                 "final_nll_iqr")


def _finite(x: float) -> float | None:
    return None if math.isnan(x) else x


def build_summary(runs: list[RunRecord], reference: dict[str, RunRecord]) -> dict[str, Any]:
    """``{"methods": {name: {metric: mean, "std": {metric: std}, "seeds": [...], "model_dir": ...}}, "target":
    {...}, "retain": {...}}``; None where a metric is undefined (no retain logs, no per-sample log)."""
    table = method_table(runs)
    methods: dict[str, Any] = {}
    for record in runs:
        entry = methods.setdefault(record.method, {"seeds": [], "model_dirs": []})
        metrics = run_metrics(record)
        entry["seeds"].append({"seed": record.seed, **{k: _finite(metrics[k]) for k in HEADLINE}})
        entry["model_dirs"].append(str(record.folder / "train" / "model"))
    for name, entry in methods.items():
        for key in HEADLINE:
            entry[key] = _finite(table[name][key][0])
        entry["std"] = {key: _finite(table[name][key][1]) for key in HEADLINE}
        entry["model_dir"] = entry["model_dirs"][0]
    out: dict[str, Any] = {"methods": methods}
    for name, record in reference.items():
        metrics = run_metrics(record)
        out[name] = {k: _finite(metrics[k]) for k in HEADLINE if k not in PER_SAMPLE}
        out[name]["model_dir"] = str(record.folder / "model")
    return out


def _cell(mean: float | None, std: float | None) -> str:
    if mean is None:
        return "n/a"
    return f"{mean:.3g}" if std is None else f"{mean:.3g} ± {std:.2g}"


def format_table(summary: dict[str, Any]) -> str:
    """One row per method (mean ± std over seeds) plus the target and retain models, then a legend line per column
    (``n/a``: undefined for that row, e.g. per-sample spreads of a model that was not unlearned)."""
    width = max(map(len, TABLE_COLUMNS)) + 2
    lines = [f"{'model':<22}" + "".join(f"{c:>{width}}" for c in TABLE_COLUMNS)]
    for name, entry in summary["methods"].items():
        std = entry.get("std", {})
        lines.append(f"{name:<22}" + "".join(f"{_cell(entry.get(c), std.get(c)):>{width}}" for c in TABLE_COLUMNS))
    for name in ("target", "retain"):
        if name in summary:
            entry = summary[name]
            lines.append(f"{name + ' model':<22}" + "".join(f"{_cell(entry.get(c), None):>{width}}"
                                                            for c in TABLE_COLUMNS))
    lines += ["", "mean ± std over seeds; n/a = not defined for that row."]
    lines += [f"  {c}: {METRIC_DOCS[c]}" for c in TABLE_COLUMNS]
    return "\n".join(lines)
