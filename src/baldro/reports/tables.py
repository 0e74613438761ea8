"""Per-method tables: mean ± std over seeds of the headline metrics and the spread of per-sample forgetting."""

from __future__ import annotations

import math
from collections import defaultdict
from statistics import mean, stdev

import numpy as np

from baldro.reports.records import RunRecord, read_per_sample

METRICS = ("forget_quality", "log10_forget_quality", "model_utility", "forget_truth_ratio", "privleak",
           "final_loss_iqr", "final_nll_iqr")


def final_iqr(record: RunRecord, key: str) -> float:
    """Inter-quantile range (90 % − 10 %) over the forget set of each sample's last logged ``key`` (``loss``: the
    objective's per-sample loss that the aggregator balances; ``nll``: the answer's token-mean NLL)."""
    if record.per_sample_path is None:
        return math.nan
    last: dict[int, float] = {}
    for row in read_per_sample(record.per_sample_path):
        if key in row:
            last[int(row["index"])] = float(row[key])
    if not last:
        return math.nan
    q10, q90 = np.quantile(list(last.values()), [0.1, 0.9])
    return float(q90 - q10)


def run_metrics(record: RunRecord) -> dict[str, float]:
    fq = record.metric("forget_quality")
    return {
        "forget_quality": fq,
        "log10_forget_quality": math.log10(fq) if fq > 0 else math.nan,
        "model_utility": record.metric("model_utility"),
        "forget_truth_ratio": record.metric("forget_truth_ratio"),
        "privleak": record.metric("privleak"),
        "final_loss_iqr": final_iqr(record, "loss"),
        "final_nll_iqr": final_iqr(record, "nll"),
    }


def mean_std(values: list[float]) -> tuple[float, float]:
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return math.nan, math.nan
    return mean(finite), (stdev(finite) if len(finite) > 1 else 0.0)


def method_table(records: list[RunRecord]) -> dict[str, dict[str, tuple[float, float]]]:
    """{method: {metric: (mean, std)}} over the seeds of each method, in first-seen method order."""
    by_method: dict[str, list[dict[str, float]]] = defaultdict(list)
    for record in records:
        by_method[record.method].append(run_metrics(record))
    return {
        method: {metric: mean_std([r[metric] for r in rows]) for metric in METRICS}
        for method, rows in by_method.items()
    }


def _cell(value: tuple[float, float], digits: int = 4) -> str:
    m, s = value
    if math.isnan(m):
        return "n/a"
    return f"{m:.{digits}g} ± {s:.2g}"


def markdown_table(table: dict[str, dict[str, tuple[float, float]]]) -> str:
    header = "| method | " + " | ".join(METRICS) + " |"
    rule = "|---" * (len(METRICS) + 1) + "|"
    rows = [f"| {method} | " + " | ".join(_cell(vals[m]) for m in METRICS) + " |" for method, vals in table.items()]
    return "\n".join([header, rule, *rows])
