"""Reading a retain model's ``*_EVAL.json`` (the reference for Forget Quality and PrivLeak), with clear errors."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from baldro.errors import DataError
from baldro.evaluation.files import read_eval_json
from baldro.evaluation.metrics import is_finite_number


def load_retain_logs(path: str | Path) -> dict[str, Any]:
    """The parsed retain-model eval file; a missing or non-JSON-object file raises :class:`DataError`."""
    return read_eval_json(path, "retain logs", "; pass the TOFU_EVAL.json / MUSE_EVAL.json of a retain model")


def retain_forget_truth_ratios(retain: Mapping[str, Any], name: str = "the retain logs") -> list[float]:
    """Per-item ``score`` values of the retain model's ``forget_truth_ratio`` (in file order)."""
    entry = retain.get("forget_truth_ratio")
    if not isinstance(entry, Mapping) or not isinstance(entry.get("value_by_index"), Mapping):
        raise DataError(
            f"{name}: key 'forget_truth_ratio' with a 'value_by_index' object is missing; "
            "expected the retain model's TOFU_EVAL.json (open-unlearning shape)"
        )
    scores = []
    for index, item in entry["value_by_index"].items():
        score = item.get("score") if isinstance(item, Mapping) else None
        if not is_finite_number(score):
            raise DataError(f"{name}: key 'forget_truth_ratio' item {index!r} has no numeric 'score'")
        scores.append(float(score))
    if not scores:
        raise DataError(f"{name}: key 'forget_truth_ratio' has no per-item scores")
    return scores


def retain_mia_auc(retain: Mapping[str, Any], name: str = "the retain logs") -> float | None:
    """The retain model's Min-K% AUC (``mia_min_k.agg_value``); None when the key is absent (PrivLeak then uses 0.5)."""
    entry = retain.get("mia_min_k")
    if entry is None:
        return None
    value = entry.get("agg_value", entry.get("auc")) if isinstance(entry, Mapping) else None
    if not is_finite_number(value) or not 0 <= value <= 1:
        raise DataError(f"{name}: key 'mia_min_k' must hold an 'agg_value' AUC in [0, 1], got {value!r}")
    return float(value)
