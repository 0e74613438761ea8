"""MUSE evaluation (Shi et al., 2024) with open-unlearning's metric names, definitions and file shapes.

* ``forget_verbmem_ROUGE``: ``verbmem/forget`` prompt → greedy, 128 new tokens → ROUGE-L F1 against ``gt``.
* ``forget_knowmem_ROUGE`` / ``retain_knowmem_ROUGE``: ``knowmem/{forget,retain}_qa`` questions after the
  ``*_qa_icl`` examples in the prompt format (default ``plain``: ``Question: …\\nAnswer: …\\n\\n`` shots, the prompt
  ending ``"Answer: "`` with its trailing space, open-unlearning's Llama-2-7b-hf tags; a chat format puts the examples
  in earlier turns, :func:`baldro.data.formatting.fewshot_prompt`); greedy, 32 new tokens, stop at ``\\n\\n``,
  ``\\nQuestion`` and ``Question:``; ROUGE-L F1 against ``answer``.
* ``mia_min_k`` (k = 0.4), ``mia_min_k_plus_plus``, ``mia_loss`` and ``mia_zlib`` on ``privleak/forget`` (members)
  vs ``privleak/holdout``: items as open-unlearning's ``preprocess_pretraining_instance`` (BOS + at most 2048 text
  tokens, no EOS; see :mod:`baldro.data.pretraining`); Min-K% / Min-K%++ drop the last labelled token as their
  ``tokenwise_logprobs`` does, ``mia_loss`` keeps it; ``privleak`` from ``mia_min_k``.
* ``extraction_strength`` / ``exact_memorization`` of ``gt`` after the verbmem prompt and one inserted space
  (open-unlearning's ``MUSE_forget_verbmem`` sets ``insert_space: True``), last labelled token dropped as they do.

Every sequence is also capped at the model's ``max_position_embeddings`` (with one warning): prompts for generation
lose tokens from the left (keeping the first) so that prompt + new tokens fit; scored items are cut on the right.
MUSE's models are base models, so the default format is ``plain`` (no chat template); ``fmt`` (``--format``) picks
another, recorded as ``prompt_format``. Only the knowmem prompts depend on it (verbmem and privleak are raw text).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from baldro.core.padmask import DEFAULT_PAD_MASKING, check_pad_masking
from baldro.core.positions import max_positions
from baldro.data.formatting import PromptFormat, fewshot_prompt, format_label
from baldro.data.muse import MUSE_ALIASES, MUSE_LAYOUT, load_muse, muse_files
from baldro.data.pretraining import pretraining_item
from baldro.errors import DataError
from baldro.evaluation import metrics
from baldro.evaluation.assemble import add_mia, fill_agg_values, load_retain, memorisation_entries, with_derived
from baldro.evaluation.files import eval_file, prepare_out_dir, summary_file, write_json
from baldro.evaluation.generation import generate_greedy
from baldro.evaluation.model_io import dtype_name, prepare_model
from baldro.evaluation.retain_logs import retain_mia_auc
from baldro.evaluation.scoring import SeqScore, score_sequences
from baldro.evaluation.summary import (
    CAPPED_KEY,
    DTYPE_KEY,
    FORMAT_KEY,
    PAD_MASKING_KEY,
    SKIPPED_KEY,
    capped_record,
    summarize,
)

KNOWMEM_STOPS = ("\n\n", "\nQuestion", "Question:")
MIA_MAX_LENGTH = 2048


def _try_load(source: str | Path, subset: str, split: str, max_items: int | None) -> list[dict] | None:
    """Rows of ``subset/split``; None when a local folder does not have that file."""
    folder = Path(source).expanduser()
    if folder.is_dir() and not muse_files(folder, subset, split):
        return None
    rows = load_muse(source, subset, split)
    return rows[:max_items] if max_items else rows


def _alias_hint(subset: str, split: str) -> str:
    aliases = MUSE_ALIASES.get((subset, split), ())
    return f" (nor {', '.join(f'{subset}/{a}' for a in aliases)})" if aliases else ""


model_position_limit = max_positions  # kept under this name for callers of the evaluator


class MuseScorer:
    """Scores and generates for one MUSE evaluation of a loaded model, cutting sequences to the model's positions
    (see :func:`evaluate_muse`)."""

    def __init__(self, model, tokenizer, pad_id, batch_size, progress, pad_masking=DEFAULT_PAD_MASKING):
        self.model, self.tok, self.pad_id = model, tokenizer, pad_id
        self.pad_masking = check_pad_masking(pad_masking)
        self.batch_size, self.progress = batch_size, progress
        self.limit = model_position_limit(model)
        self.capped: set[str] = set()

    def _cap_note(self, name: str) -> None:
        if not self.capped:
            warnings.warn(
                f"{name}: some sequences are longer than the model's max_position_embeddings={self.limit}; they are cut "
                "to fit (prompts lose tokens from the left, scored texts from the right), which open-unlearning does "
                "not do",
                UserWarning,
                stacklevel=3,
            )
        self.capped.add(name)

    def _fit_prompt(self, name: str, ids: list[int], max_new_tokens: int) -> list[int]:
        if self.limit is None or len(ids) + max_new_tokens <= self.limit:
            return ids
        self._cap_note(name)
        keep = max(self.limit - max_new_tokens, 1)
        return ids[:1] + ids[len(ids) - keep + 1 :] if keep > 1 else ids[:1]

    def rouge(self, name: str, prompts: list[str], truths: list[str], max_new_tokens: int, stops=(),
              special: bool = True) -> dict:
        """ROUGE items of greedy generations from the text ``prompts`` (tokenised with the tokenizer's special tokens
        unless ``special`` is False: chat-template text carries its own)."""
        ids = [self._fit_prompt(name, list(self.tok(p, add_special_tokens=special)["input_ids"]), max_new_tokens)
               for p in prompts]
        gens = generate_greedy(
            self.model, self.tok, ids, max_new_tokens, self.pad_id, self.batch_size, stops,
            desc=f"{name}: generating", progress=self.progress, pad_masking=self.pad_masking,
        )
        return {
            "agg_value": None,
            "value_by_index": {
                str(i): {**metrics.rouge_scores(g, t), "input": p, "ground_truth": t, "generation": g}
                for i, (p, t, g) in enumerate(zip(prompts, truths, gens))
            },
        }

    def score(
        self, name: str, pairs: list[tuple[str, str]], max_length: int, insert_space: bool = False
    ) -> tuple[list[SeqScore], list[list[int]]]:
        enc = [pretraining_item(self.tok, p, t, max_length, insert_space) for p, t in pairs]
        if self.limit is not None and any(len(e[0]) > self.limit for e in enc):
            self._cap_note(name)
            enc = [(ids[: self.limit], lab[: self.limit]) for ids, lab in enc]
        labels = [e[1] for e in enc]
        scores = score_sequences(
            self.model, [e[0] for e in enc], labels, self.pad_id, self.batch_size, f"{name}: scoring", self.progress,
            self.pad_masking,
        )
        return scores, labels


def unscored_item_reasons(scores: list[SeqScore], name: str, limit: int | None) -> dict[str, str]:
    """Why some items of ``extraction_strength`` / ``exact_memorization`` carry no measurement: the items with no
    scored token (the last labelled token is dropped, as open-unlearning does; a prompt that fills the model's
    positions leaves none). Their values are open-unlearning's for that case — ES 0, EM null and left out of the
    mean — and this says so, under ``skipped``, instead of passing a 0 off as a measurement."""
    empty = [i for i, s in enumerate(scores) if len(s.hits) <= 1]
    if not empty:
        return {}
    shown = ", ".join(map(str, empty[:10])) + (", …" if len(empty) > 10 else "")
    cause = (f"the prompt fills the model's {limit} positions or " if limit is not None else "") + "the text has one token"
    which = f"{len(empty)} of {len(scores)} {name} items (index {shown}) have no scored token ({cause})"
    return {
        "extraction_strength": f"partly: {which}; they score 0.0, as open-unlearning scores an item with no target token",
        "exact_memorization": f"partly: {which}; they are null and left out of the mean, as open-unlearning does",
    }


def build_muse_eval(scorer: MuseScorer, source: str | Path, max_items: int | None, max_new_tokens: dict,
                    fmt: PromptFormat | None = None) -> dict[str, Any]:
    """The MUSE_EVAL.json dict (agg_values filled) with the reasons of skipped metrics under ``skipped``; ``fmt``:
    the knowmem prompts' format (default ``plain``)."""
    fmt = (fmt or PromptFormat.preset("plain")).resolve(scorer.tok)
    out: dict[str, Any] = {}
    reasons: dict[str, str] = {}
    verb = _try_load(source, "verbmem", "forget", max_items)
    if verb is None:
        for m in ("forget_verbmem_ROUGE", "extraction_strength", "exact_memorization"):
            reasons[m] = f"verbmem/forget is not in {source}"
    else:
        out["forget_verbmem_ROUGE"] = scorer.rouge(
            "verbmem/forget", [r["prompt"] for r in verb], [r["gt"] for r in verb], max_new_tokens["verbmem"]
        )
        # open-unlearning's MUSE_forget_verbmem dataset sets insert_space: True (prompt + " " + gt)
        pairs = [(r["prompt"], r["gt"]) for r in verb]
        scores, _ = scorer.score("verbmem/forget", pairs, MIA_MAX_LENGTH, insert_space=True)
        out.update(memorisation_entries(scores))
        reasons.update(unscored_item_reasons(scores, "verbmem/forget", scorer.limit))
    qa_rows: dict[str, list[dict] | None] = {}
    for which in ("forget", "retain"):
        name = f"{which}_knowmem_ROUGE"
        qa = qa_rows[which] = _try_load(source, "knowmem", f"{which}_qa", max_items)
        if qa is None:
            reasons[name] = f"knowmem/{which}_qa is not in {source}{_alias_hint('knowmem', f'{which}_qa')}"
            continue
        shots = [(r["question"], r["answer"]) for r in _try_load(source, "knowmem", f"{which}_qa_icl", None) or []]
        rendered = [fewshot_prompt(scorer.tok, shots, r["question"], fmt) for r in qa]
        out[name] = scorer.rouge(
            f"knowmem/{which}_qa", [t for t, _ in rendered], [r["answer"] for r in qa], max_new_tokens["knowmem"],
            KNOWMEM_STOPS, special=rendered[0][1] if rendered else True,
        )
    forget = _try_load(source, "privleak", "forget", max_items)
    holdout = _try_load(source, "privleak", "holdout", max_items)
    members = non_members = None
    if forget is not None and holdout is not None:
        members = scorer.score("privleak/forget", [("", r["text"]) for r in forget], MIA_MAX_LENGTH)
        non_members = scorer.score("privleak/holdout", [("", r["text"]) for r in holdout], MIA_MAX_LENGTH)
    missing = "privleak/forget" if forget is None else "privleak/holdout"
    add_mia(out, reasons, scorer.tok, members, non_members, f"{missing} is not in {source}")
    fill_agg_values(out, "muse")
    loaded = {"verbmem/forget": verb, "knowmem/forget_qa": qa_rows.get("forget"),
              "knowmem/retain_qa": qa_rows.get("retain"), "privleak/forget": forget, "privleak/holdout": holdout}
    capped = capped_record(max_items, {name: len(rows) for name, rows in loaded.items() if rows is not None})
    if capped:
        out[CAPPED_KEY] = capped
    out[SKIPPED_KEY] = reasons
    out[FORMAT_KEY] = format_label(fmt, scorer.tok)
    out[PAD_MASKING_KEY] = scorer.pad_masking
    out[DTYPE_KEY] = dtype_name(scorer.model)
    return out


def evaluate_muse(
    model_or_path: str | Path | nn.Module,
    data_source: str | Path,
    retain_logs: str | Path | Mapping[str, Any] | None = None,
    out_dir: str | Path | None = None,
    batch_size: int = 8,
    max_items: int | None = None,
    *,
    tokenizer: Any = None,
    overwrite: bool = False,
    verbmem_max_new_tokens: int = 128,
    knowmem_max_new_tokens: int = 32,
    progress: bool = True,
    return_eval: bool = False,
    pad_masking: str = DEFAULT_PAD_MASKING,
    fmt: PromptFormat | None = None,
    dtype: str | None = None,
) -> dict[str, Any] | tuple[dict[str, Any], dict[str, Any]]:
    """Evaluate a causal LM on MUSE; returns the summary (and the eval dict with ``return_eval``).

    With ``out_dir`` writes ``MUSE_EVAL.json`` and ``MUSE_SUMMARY.json`` (a non-empty folder is refused unless
    ``overwrite``). ``retain_logs``: the retrained model's MUSE_EVAL.json, whose ``mia_min_k`` AUC is PrivLeak's
    reference (0.5 without it). ``pad_masking``: as in :func:`baldro.evaluation.tofu.evaluate_tofu` (MUSE's texts
    rarely hold the pad token; recorded in both files). ``fmt``: the knowmem prompts' format (default ``plain``,
    MUSE's base-model tags; recorded as ``prompt_format``). ``dtype``: as in
    :func:`baldro.evaluation.tofu.evaluate_tofu` (recorded as ``model_dtype``).
    """
    check_pad_masking(pad_masking, "pad_masking")
    retain, retain_name = load_retain(retain_logs)
    if retain is not None:
        retain_mia_auc(retain, retain_name)
    out = prepare_out_dir(out_dir, overwrite) if out_dir is not None else None
    folder = Path(data_source).expanduser()
    if folder.is_dir() and not any((folder / s).is_dir() for s in MUSE_LAYOUT):
        raise DataError(f"{folder}: not a MUSE folder (expected knowmem/, verbmem/, privleak/ subfolders)")
    model, tok, pad_id = prepare_model(model_or_path, tokenizer, dtype)
    scorer = MuseScorer(model, tok, pad_id, batch_size, progress, pad_masking)
    tokens = {"verbmem": verbmem_max_new_tokens, "knowmem": knowmem_max_new_tokens}
    eval_json = build_muse_eval(scorer, data_source, max_items, tokens, fmt)
    summary = summarize(eval_json, retain, "muse", retain_name=retain_name)
    eval_json = with_derived(eval_json, summary)
    if out is not None:
        write_json(eval_file(out, "muse"), eval_json)
        write_json(summary_file(out, "muse"), summary)
    return (summary, eval_json) if return_eval else summary
