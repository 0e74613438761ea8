"""TOFU evaluation (Maini et al., 2024) with open-unlearning's metric names, definitions and file shapes: the
orchestration. The model-facing work (tokenising, scoring, generating) is :class:`.tofu_scorer.TofuScorer`'s, the
per-item entries of each split :mod:`.tofu_entries`', the aggregates and the summary (Model Utility, Forget Quality)
:mod:`.assemble`'s and :mod:`.summary`'s, the files :mod:`.files`'.

Per split the rows are tokenised once, in batches; each question's prompt and the prefix tree of its answer variants
— answer, paraphrased answer, each perturbed answer — are scored in packed forward passes that yield probability,
truth-ratio inputs, Min-K% and greedy-match statistics together (:mod:`.tree_scoring`). Each question is answered once
by greedy generation, the questions of all splits decoded together (``generation_batch_size`` a batch), and that one
answer is scored against the answer, the paraphrased answer and every perturbed answer (``*_Q_A_ROUGE``,
``*_Q_A_PARA_ROUGE``, ``*_Q_A_PERT_ROUGE``), where open-unlearning re-generates per metric and per perturbed answer.

Splits: ``<forget>_perturbed`` (prefix ``forget``; falls back to the plain ``<forget>`` split), ``retain_perturbed``
(``retain``), ``real_authors_perturbed`` (``ra``), ``world_facts_perturbed`` (``wf``) and ``holdoutNN`` (for the
membership-inference metrics). Missing splits or fields skip the metrics that need them, with the reason recorded.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

from torch import nn

from baldro.core.padmask import DEFAULT_PAD_MASKING, check_pad_masking
from baldro.data.formatting import PromptFormat, format_label
from baldro.errors import ConfigError
from baldro.evaluation.assemble import add_mia, fill_agg_values, load_retain, memorisation_entries, with_derived
from baldro.evaluation.files import eval_file, prepare_out_dir, summary_file, write_json
from baldro.evaluation.model_io import dtype_name, prepare_model
from baldro.evaluation.retain_logs import retain_forget_truth_ratios, retain_mia_auc
from baldro.evaluation.summary import (
    CAPPED_KEY,
    DTYPE_KEY,
    FORMAT_KEY,
    PAD_MASKING_KEY,
    SKIPPED_KEY,
    capped_record,
    summarize,
)
from baldro.evaluation.tofu_entries import add_split_entries, rouge_items
from baldro.evaluation.tofu_scorer import TofuScorer
from baldro.evaluation.tofu_splits import Split, load_tofu_eval_splits


def build_tofu_eval(scorer: TofuScorer, splits: dict[str, Split], skipped: dict[str, str]) -> dict[str, Any]:
    """The TOFU_EVAL.json dict (agg_values filled) and the reasons of every skipped metric under ``skipped``."""
    out: dict[str, Any] = {}
    reasons: dict[str, str] = {}
    present = [p for p in ("forget", "retain", "ra", "wf") if p in splits]
    scores = {p: scorer.score_split(splits[p]) for p in present}  # before generation: the answers' hits are drafts
    scorer.generate_splits([splits[p] for p in present], [scores[p]["answer"] for p in present])
    for prefix in ("forget", "retain", "ra", "wf"):
        if prefix not in splits:
            for m in ("Q_A_Prob", "Q_A_PERT_Prob", "Q_A_ROUGE"):
                reasons[f"{prefix}_{m}"] = skipped[prefix]
            continue
        split = splits[prefix]
        inputs, gens = scorer.generate(split)
        add_split_entries(split, scores[prefix], partial(rouge_items, scorer.decode, inputs, gens), out, reasons)
        if prefix == "forget":
            out.update(memorisation_entries(scores[prefix]["answer"]))
    forget = scores.get("forget")
    holdout = None
    if "holdout" in splits and forget is not None:
        holdout = scorer.score(splits["holdout"], [r["answer"] for r in splits["holdout"].rows], "answers")
    members = (forget["answer"], forget["labels"]["answer"]) if forget is not None else None
    add_mia(out, reasons, scorer.tok, members, holdout, skipped.get("holdout", "needs the forget split"))
    fill_agg_values(out, "tofu")
    out[SKIPPED_KEY] = reasons
    return out


def checked_retain(retain_logs: str | Path | Mapping[str, Any] | None) -> tuple[dict[str, Any] | None, str]:
    """(retain logs or None, their name in messages), the keys Forget Quality / PrivLeak read checked up front."""
    retain, retain_name = load_retain(retain_logs)
    if retain is not None:
        retain_forget_truth_ratios(retain, retain_name)
        retain_mia_auc(retain, retain_name)
    return retain, retain_name


def run_tofu_eval(
    scorer: TofuScorer, splits: dict[str, Split], skipped: dict[str, str], retain: Mapping[str, Any] | None,
    retain_name: str, max_items: int | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(summary, TOFU_EVAL.json dict) of ``scorer``'s model on ``splits`` — the one path every TOFU evaluation takes.
    ``max_items``: the cap the splits were cut to, recorded with their row counts in both files."""
    eval_json = build_tofu_eval(scorer, splits, skipped)
    eval_json[FORMAT_KEY] = format_label(scorer.fmt, scorer.tok)
    eval_json[PAD_MASKING_KEY] = scorer.pad_masking
    capped = capped_record(max_items, {split.name: len(split.rows) for split in splits.values()})
    if capped:
        eval_json[CAPPED_KEY] = capped
    eval_json[DTYPE_KEY] = dtype_name(scorer.model)
    summary = summarize(eval_json, retain, "tofu", retain_name=retain_name)
    return summary, with_derived(eval_json, summary)


def evaluate_tofu(
    model_or_path: str | Path | nn.Module,
    data_source: str | Path,
    forget_split: str = "forget10",
    retain_logs: str | Path | Mapping[str, Any] | None = None,
    out_dir: str | Path | None = None,
    batch_size: int = 32,
    max_new_tokens: int = 200,
    max_items: int | None = None,
    fmt: PromptFormat | None = None,
    *,
    generation_batch_size: int | None = None,
    tokenizer: Any = None,
    overwrite: bool = False,
    max_length: int = 512,
    progress: bool = True,
    return_eval: bool = False,
    pad_masking: str = DEFAULT_PAD_MASKING,
    draft_answers: bool = True,
    dtype: str | None = None,
) -> dict[str, Any] | tuple[dict[str, Any], dict[str, Any]]:
    """Evaluate a causal LM on TOFU; returns the summary (and the eval dict with ``return_eval``).

    With ``out_dir`` writes ``TOFU_EVAL.json`` and ``TOFU_SUMMARY.json`` there (a non-empty folder is refused unless
    ``overwrite``). ``retain_logs``: the retain model's TOFU_EVAL.json (path or dict) for Forget Quality / PrivLeak.
    ``max_items`` keeps the first rows of every split (for quick checks; Forget Quality then needs matching logs).
    ``batch_size`` questions are scored a batch; greedy generation runs the questions of all splits together,
    ``generation_batch_size`` a batch (default ``GENERATION_BATCH_FACTOR × batch_size``: finished rows leave a batch,
    so a larger one keeps more rows busy per decoding step; its KV cache is what bounds it).
    ``pad_masking``: ``position`` (default: padding positions masked, the fast scoring and decoding paths) or
    ``token`` (open-unlearning's ``attention_mask = input_ids != pad_token_id``, real pad-id tokens included:
    full-sequence scoring and transformers' ``generate``; :mod:`baldro.core.padmask`). Recorded in both files.
    ``draft_answers``: each answer is scored before generation, and the leading answer tokens its greedy hits predict
    are prefilled as a draft, verified there as in speculative decoding, instead of decoded one step each
    (:mod:`.answer_drafts`; lean decoding only).
    ``dtype``: the precision a path is loaded in (``auto``/None: the checkpoint's, float32 on CPU in place of a
    half-precision one; :mod:`.model_io`); the parameters' dtype is recorded as ``model_dtype`` in both files.
    """
    check_pad_masking(pad_masking, "pad_masking")
    for name, value in (("batch_size", batch_size), ("generation_batch_size", generation_batch_size)):
        if value is not None and value < 1:
            raise ConfigError(f"{name} must be at least 1, got {value}")
    retain, retain_name = checked_retain(retain_logs)
    splits, skipped = load_tofu_eval_splits(data_source, forget_split, max_items)
    out = prepare_out_dir(out_dir, overwrite) if out_dir is not None else None
    model, tok, pad_id = prepare_model(model_or_path, tokenizer, dtype)
    scorer = TofuScorer(model, tok, pad_id, fmt, batch_size, max_new_tokens, max_length, progress,
                        generation_batch_size, pad_masking, draft_answers)
    summary, eval_json = run_tofu_eval(scorer, splits, skipped, retain, retain_name, max_items)
    if out is not None:
        write_json(eval_file(out, "tofu"), eval_json)
        write_json(summary_file(out, "tofu"), summary)
    return (summary, eval_json) if return_eval else summary
