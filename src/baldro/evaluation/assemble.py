"""Pieces shared by the TOFU and MUSE evaluators: MIA entries, retain logs, derived-metric entries."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from baldro.evaluation import metrics
from baldro.evaluation.retain_logs import load_retain_logs
from baldro.evaluation.scoring import SeqScore
from baldro.evaluation.summary import DERIVED, SKIPPED_KEY


def mia_part(scores: list[SeqScore], stat: str) -> dict[str, Any]:
    """One side (forget or holdout) of an MIA entry: per-item Min-K% (EOS prediction dropped) or avg_loss scores."""
    vals = [metrics.min_k_score(s.token_logprobs[:-1]) if stat == "min_k" else s.avg_loss for s in scores]
    return {"agg_value": metrics.mean_of_items(vals), "value_by_index": {str(i): {"score": v} for i, v in enumerate(vals)}}


def load_retain(retain_logs: str | Path | Mapping[str, Any] | None) -> tuple[dict[str, Any] | None, str]:
    """(retain logs as a dict or None, the name used in error messages)."""
    if retain_logs is None:
        return None, "the retain logs"
    if isinstance(retain_logs, Mapping):
        return dict(retain_logs), "the retain logs"
    return load_retain_logs(retain_logs), str(retain_logs)


def with_derived(eval_json: dict[str, Any], summary: Mapping[str, Any]) -> dict[str, Any]:
    """The eval dict with ``{"agg_value": v}`` entries for the derived metrics, as open-unlearning's files have."""
    out = {k: v for k, v in eval_json.items() if k != SKIPPED_KEY}
    for name in DERIVED:
        if name in summary:
            out[name] = {"agg_value": summary[name]}
    out[SKIPPED_KEY] = eval_json[SKIPPED_KEY]
    return out
