"""Pieces shared by the TOFU and MUSE evaluators: the MIA block, memorisation entries, agg values, retain logs,
derived-metric entries — written once here, called by :mod:`.tofu` and :mod:`.muse`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from baldro.evaluation import metrics
from baldro.evaluation.retain_logs import load_retain_logs
from baldro.evaluation.scoring import SeqScore
from baldro.evaluation.summary import DERIVED, SKIPPED_KEY, aggregate

MIA_STATS = ("min_k", "min_k_plus_plus", "loss", "zlib")
MIA_METRICS = (*(f"mia_{stat}" for stat in MIA_STATS), "privleak")
Scored = tuple[list[SeqScore], list[list[int]]]  # (scores, labels) of one split


def _mia_score(s: SeqScore, stat: str, text: str) -> float:
    if stat == "min_k":
        return metrics.min_k_score(s.token_logprobs[:-1])
    if stat == "min_k_plus_plus":
        return metrics.min_k_plus_plus_score(s.token_logprobs[:-1], s.mu[:-1], s.sigma[:-1])
    if stat == "zlib":
        return metrics.zlib_score(s.avg_loss, text)
    return s.avg_loss


def mia_part(scores: list[SeqScore], stat: str, texts: list[str]) -> dict[str, Any]:
    """One side (forget or holdout) of an MIA entry (open-unlearning's attacks, loss-like: members score lower).

    ``min_k`` / ``min_k_plus_plus`` use the answer tokens without the EOS prediction; ``loss`` is avg_loss (EOS
    included); ``zlib`` is avg_loss / zlib-compressed length of the decoded answer ``texts``.
    """
    vals = [_mia_score(s, stat, t) for s, t in zip(scores, texts)]
    return {"agg_value": metrics.mean_of_items(vals), "value_by_index": {str(i): {"score": v} for i, v in enumerate(vals)}}


def mia_entries(
    forget: list[SeqScore], forget_texts: list[str], holdout: list[SeqScore], holdout_texts: list[str]
) -> dict[str, dict[str, Any]]:
    """``{"mia_<stat>": {"forget", "holdout", "auc", "agg_value"}}`` for every attack (AUCs filled by the caller)."""
    return {
        f"mia_{stat}": {
            "forget": mia_part(forget, stat, forget_texts),
            "holdout": mia_part(holdout, stat, holdout_texts),
            "auc": None,
            "agg_value": None,
        }
        for stat in MIA_STATS
    }


def add_mia(
    out: dict[str, Any], reasons: dict[str, str], tokenizer: Any, forget: Scored | None, holdout: Scored | None,
    reason: str,
) -> None:
    """The MIA block of an eval dict: with both ``forget`` (members) and ``holdout`` (non-members) scored, one
    ``mia_<stat>`` entry per attack into ``out`` (texts decoded from the labels, as open-unlearning's targets);
    otherwise ``reason`` for every MIA metric and ``privleak`` into ``reasons``."""
    if forget is None or holdout is None:
        for name in MIA_METRICS:
            reasons[name] = reason
        return
    out.update(mia_entries(
        forget[0], decoded_answers(tokenizer, forget[1]), holdout[0], decoded_answers(tokenizer, holdout[1])
    ))


def memorisation_entries(scores: list[SeqScore]) -> dict[str, dict[str, Any]]:
    """``extraction_strength`` and ``exact_memorization`` entries of the forget-set scores, the EOS prediction excluded
    (open-unlearning's ``tokenwise_logprobs`` drops it)."""
    hits = [s.hits[:-1] for s in scores]
    return {
        "extraction_strength": {
            "agg_value": None,
            "value_by_index": {str(i): {"score": metrics.extraction_strength(h)} for i, h in enumerate(hits)},
        },
        "exact_memorization": {
            "agg_value": None,
            "value_by_index": {str(i): {"score": metrics.exact_memorization(h)} for i, h in enumerate(hits)},
        },
    }


def fill_agg_values(out: dict[str, Any], benchmark: str) -> None:
    """Every entry's ``agg_value`` (see :func:`baldro.evaluation.summary.aggregate`); MIA entries also carry it as
    ``auc``, as open-unlearning's files do."""
    for name, entry in out.items():
        entry["agg_value"] = aggregate(name, entry, benchmark)
        if name.startswith("mia_"):
            entry["auc"] = entry["agg_value"]


def decoded_answers(tokenizer: Any, labels: list[list[int]]) -> list[str]:
    """The labelled tokens of each sequence decoded without special tokens (open-unlearning's target texts)."""
    return [tokenizer.decode([t for t in lab if t >= 0], skip_special_tokens=True) for lab in labels]


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
