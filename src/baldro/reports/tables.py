"""Per-method tables: mean ± std over seeds of the headline metrics and the spread of per-sample forgetting."""

from __future__ import annotations

import math
from collections import defaultdict
from statistics import mean, stdev

import numpy as np

from baldro.reports.records import RunRecord, read_per_sample

METRICS = ("forget_quality", "log10_forget_quality", "model_utility", "forget_truth_ratio", "privleak",
           "final_loss_iqr", "final_nll_iqr")
# One line per column, for the terminal legend and report.md (definitions as open-unlearning computes them).
METRIC_DOCS = {
    "forget_quality": "Forget Quality: p-value of the KS test between the forget set's truth ratios and the retain "
                      "model's (higher = closer to a model never trained on the forget set; the retain model is 1 by "
                      "construction)",
    "log10_forget_quality": "log10 of Forget Quality (how many orders of magnitude below 1)",
    "model_utility": "Model Utility: harmonic mean of answer probability, ROUGE-L and truth ratio on the retain, "
                     "real-authors and world-facts sets (higher = more useful)",
    "forget_truth_ratio": "mean over the forget set of min(TR, 1/TR), TR = P(wrong answers) / P(paraphrased answer) "
                          "(1 = the model cannot tell right from wrong)",
    "privleak": "PrivLeak: Min-K% membership-inference AUC (forget vs holdout) relative to the retain model's, in % "
                "(0 = like the retain model; negative = the forget set is still easier to detect, i.e. under-unlearned; "
                "positive = over-unlearned)",
    "final_loss_iqr": "90 % - 10 % quantile range over the forget set of each sample's last logged objective loss "
                      "(the spread that the DRO aggregator balances; lower = more synchronous forgetting)",
    "final_nll_iqr": "the same range for each sample's last logged answer NLL",
}


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
