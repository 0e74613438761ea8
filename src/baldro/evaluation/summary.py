"""Summaries (metric → value) recomputed from the per-item values of a ``*_EVAL.json``.

The same functions fill the ``agg_value`` fields when we evaluate a model and re-score an existing file (ours or
open-unlearning's), so ``summarize(json.load(EVAL))`` reproduces the summary written next to it. Derived metrics are
recomputed from their inputs: ``forget_quality`` (KS test of ``forget_truth_ratio`` against the retain model's),
``model_utility`` (harmonic mean of nine utility metrics) and ``privleak`` (``mia_min_k`` AUC against the retain
model's AUC, 0.5 without retain logs).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from baldro.errors import DataError
from baldro.evaluation import metrics
from baldro.evaluation.retain_logs import retain_forget_truth_ratios, retain_mia_auc

BENCHMARKS = ("tofu", "muse")

MODEL_UTILITY_KEYS = (
    "retain_Q_A_Prob",
    "retain_Q_A_ROUGE",
    "retain_Truth_Ratio",
    "ra_Q_A_Prob_normalised",
    "ra_Q_A_ROUGE",
    "ra_Truth_Ratio",
    "wf_Q_A_Prob_normalised",
    "wf_Q_A_ROUGE",
    "wf_Truth_Ratio",
)
DERIVED = ("forget_quality", "model_utility", "privleak")
SKIPPED_KEY = "skipped"
FORMAT_KEY = "prompt_format"  # the prompt format preset an evaluation used (a string; open-unlearning's files lack it)
PAD_MASKING_KEY = "pad_masking"  # position | token (baldro.core.padmask); files without it: position (or open-unlearning's)
CAPPED_KEY = "capped"  # {"max_items": N, "items": {split: rows evaluated}}: an evaluation cut by --max-items
DTYPE_KEY = "model_dtype"  # the dtype of the evaluated model's parameters (bfloat16, float32, ...; model_io.dtype_name)
METADATA_KEYS = (SKIPPED_KEY, FORMAT_KEY, PAD_MASKING_KEY, CAPPED_KEY, DTYPE_KEY)
ROUGE_KEY = {"tofu": "rougeL_recall", "muse": "rougeL_f1"}

EXPECTED = {
    "tofu": (
        "forget_Q_A_Prob", "forget_Q_A_PARA_Prob", "forget_Q_A_PERT_Prob", "forget_Q_A_ROUGE",
        "forget_Q_A_PARA_ROUGE", "forget_Q_A_PERT_ROUGE", "forget_truth_ratio", "forget_quality", "retain_Q_A_Prob",
        "retain_Q_A_PARA_Prob", "retain_Q_A_PERT_Prob", "retain_Q_A_ROUGE", "retain_Q_A_PARA_ROUGE",
        "retain_Q_A_PERT_ROUGE", "retain_Truth_Ratio", "ra_Q_A_Prob", "ra_Q_A_PERT_Prob", "ra_Q_A_Prob_normalised", "ra_Q_A_ROUGE",
        "ra_Truth_Ratio", "wf_Q_A_Prob", "wf_Q_A_PERT_Prob", "wf_Q_A_Prob_normalised", "wf_Q_A_ROUGE",
        "wf_Truth_Ratio", "model_utility", "extraction_strength", "exact_memorization", "mia_min_k",
        "mia_min_k_plus_plus", "mia_loss", "mia_zlib", "privleak",
    ),
    "muse": (
        "forget_knowmem_ROUGE", "retain_knowmem_ROUGE", "forget_verbmem_ROUGE", "extraction_strength",
        "exact_memorization", "mia_min_k", "mia_min_k_plus_plus", "mia_loss", "mia_zlib", "privleak",
    ),
}
NO_RETAIN_LOGS = (
    "needs the retain model's evaluation: pass --retain-logs with the TOFU_EVAL.json of a model trained only on the "
    "retain split (open-unlearning publishes them in the Hugging Face dataset open-unlearning/eval, e.g. "
    "tofu_Llama-3.2-1B-Instruct_retain90/TOFU_EVAL.json), or run `baldro eval tofu` on your own retain model"
)


def _per_item(entry: Mapping[str, Any], field: str) -> list[Any]:
    return [v.get(field) if isinstance(v, Mapping) else None for v in entry["value_by_index"].values()]


def _scores(entry: Mapping[str, Any]) -> list[float]:
    return [s for s in _per_item(entry, "score") if s is not None]


def _has_items(entry: Any) -> bool:
    return isinstance(entry, Mapping) and isinstance(entry.get("value_by_index"), Mapping)


def aggregate(name: str, entry: Mapping[str, Any], benchmark: str = "tofu") -> float | None:
    """The ``agg_value`` of one metric recomputed from its per-item values (None when it has none to use)."""
    if name.startswith("mia_"):
        if not (_has_items(entry.get("forget")) and _has_items(entry.get("holdout"))):
            return _stored(entry)
        return metrics.mia_auc(_scores(entry["forget"]), _scores(entry["holdout"]))
    if not _has_items(entry) or not entry["value_by_index"]:
        return _stored(entry)
    if name == "forget_truth_ratio":
        return metrics.tr_closer_to_1_better(_scores(entry))
    if name.endswith("_Truth_Ratio") or name.endswith("_truth_ratio"):
        return metrics.tr_true_better(_scores(entry))
    if "ROUGE" in name:
        return metrics.mean_of_items(_per_item(entry, ROUGE_KEY[benchmark]))
    if name.endswith("_Prob") or name.endswith("_normalised"):
        return metrics.mean_of_items(_per_item(entry, "prob"))
    if name in ("extraction_strength", "exact_memorization") or name.endswith("_extraction_strength"):
        return metrics.mean_of_items(_scores(entry))
    return _stored(entry)


def _few(names: list[str]) -> str:
    return ", ".join(repr(n) for n in names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def _non_finite(entry: Mapping[str, Any]) -> str:
    """Which items of a metric hold a NaN or infinite value (for the ``skipped`` reason)."""
    parts = [entry.get("forget"), entry.get("holdout")] if not _has_items(entry) else [entry]
    bad = [str(index) for part in parts if _has_items(part) for index, item in part["value_by_index"].items()
           if isinstance(item, Mapping) and any(isinstance(v, float) and not math.isfinite(v) for v in item.values())]
    return f"items {_few(bad)} hold NaN or infinite values" if bad else "its stored value is NaN or infinite"


def _stored(entry: Any) -> float | None:
    value = entry.get("agg_value") if isinstance(entry, Mapping) else None
    return float(value) if metrics.is_finite_number(value) else None


def summarize(
    eval_json: Mapping[str, Any],
    retain_eval: Mapping[str, Any] | None = None,
    benchmark: str = "tofu",
    *,
    retain_name: str = "the retain logs",
) -> dict[str, Any]:
    """Summary {metric: value} of an ``*_EVAL.json`` dict, derived metrics recomputed, plus ``skipped`` reasons.

    ``retain_eval`` is the retain model's ``*_EVAL.json`` (open-unlearning's ``retain_logs_path``); a malformed one
    raises :class:`DataError` naming ``retain_name`` and the key. Reasons our evaluator stored under the eval file's
    ``skipped`` key are kept; metrics missing for other reasons get a generic one.
    """
    if benchmark not in BENCHMARKS:
        raise DataError(f"unknown benchmark {benchmark!r}: use one of {', '.join(BENCHMARKS)}")
    if not isinstance(eval_json, Mapping):
        raise DataError("the eval file must hold a JSON object mapping metric names to results")
    hints = stored_skip_reasons(eval_json)
    summary: dict[str, Any] = {}
    skipped: dict[str, str] = {}  # the reasons found here win over stored hints
    for name, entry in eval_json.items():
        if name in DERIVED or name in METADATA_KEYS or not isinstance(entry, Mapping):
            continue
        try:
            summary[name] = aggregate(name, entry, benchmark)
        except (ValueError, TypeError) as err:
            raise DataError(f"metric '{name}': malformed per-item values in the eval file ({err})") from err
        if summary[name] is not None and not metrics.is_finite_number(summary[name]):
            summary[name] = None
            skipped[name] = f"not a finite number: {_non_finite(entry)}"
    if benchmark == "tofu":
        _forget_quality(eval_json, retain_eval, retain_name, summary, skipped)
        _model_utility(summary, skipped)
    _privleak(retain_eval, retain_name, summary, skipped, hints)
    for name in EXPECTED[benchmark]:
        if name not in summary and name not in skipped:
            skipped[name] = hints.get(name, "not in the eval file (its inputs were not evaluated)")
    for name, reason in hints.items():  # metrics evaluated on part of their items say why the rest are missing
        if name in summary and name not in skipped:
            skipped[name] = reason
    if skipped:
        summary[SKIPPED_KEY] = skipped
    for key in (FORMAT_KEY, PAD_MASKING_KEY, DTYPE_KEY):
        if isinstance(eval_json.get(key), str):
            summary[key] = eval_json[key]
    if isinstance(eval_json.get(CAPPED_KEY), Mapping):
        summary[CAPPED_KEY] = dict(eval_json[CAPPED_KEY])
    return summary


def capped_record(max_items: int | None, items: Mapping[str, int]) -> dict[str, Any] | None:
    """What an evaluation cut by ``max_items`` records under :data:`CAPPED_KEY` (None when it was not cut)."""
    return {"max_items": int(max_items), "items": dict(items)} if max_items else None


def _forget_quality(eval_json, retain_eval, retain_name, summary, skipped) -> None:
    entry = eval_json.get("forget_truth_ratio")
    if not _has_items(entry):
        skipped["forget_quality"] = "needs forget_truth_ratio, which is not in the eval file"
        return
    if retain_eval is None:
        summary["forget_quality"] = None
        skipped["forget_quality"] = NO_RETAIN_LOGS
        return
    bad = [index for index, item in entry["value_by_index"].items()
           if not metrics.is_finite_number(item.get("score") if isinstance(item, Mapping) else None)]
    if bad:
        summary["forget_quality"] = None
        skipped["forget_quality"] = (f"forget_truth_ratio items {_few(bad)} have no finite score (NaN, infinite or "
                                     "null): the KS test needs every item's truth ratio; evaluate the model again")
        return
    model_tr = _scores(entry)
    retain_tr = retain_forget_truth_ratios(retain_eval, retain_name)
    if len(retain_tr) != len(model_tr):
        raise DataError(
            f"{retain_name}: key 'forget_truth_ratio' has {len(retain_tr)} per-item scores but this evaluation has "
            f"{len(model_tr)}; use the retain model's logs for the same forget split (and no --max-items)"
        )
    summary["forget_quality"] = metrics.forget_quality(model_tr, retain_tr)


def _model_utility(summary, skipped) -> None:
    missing = [k for k in MODEL_UTILITY_KEYS if not metrics.is_finite_number(summary.get(k))]
    if missing:
        skipped["model_utility"] = "needs " + ", ".join(missing)
        return
    summary["model_utility"] = metrics.model_utility([summary[k] for k in MODEL_UTILITY_KEYS])


def _privleak(retain_eval, retain_name, summary, skipped, hints) -> None:
    auc = summary.get("mia_min_k")
    if not metrics.is_finite_number(auc):
        summary["privleak"] = None
        skipped["privleak"] = hints.get("privleak", "needs mia_min_k (Min-K% AUC of forget vs holdout)")
        return
    ref = retain_mia_auc(retain_eval, retain_name) if retain_eval is not None else None
    summary["privleak"] = metrics.privleak(auc, 0.5 if ref is None else ref)


def stored_skip_reasons(eval_json: Mapping[str, Any]) -> dict[str, str]:
    """Reasons our evaluator stored under ``skipped`` in an eval file (open-unlearning's files have none)."""
    hint = eval_json.get(SKIPPED_KEY)
    return {str(k): str(v) for k, v in hint.items()} if isinstance(hint, Mapping) else {}
