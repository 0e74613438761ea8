"""TOFU evaluation (Maini et al., 2024) with open-unlearning's metric names, definitions and file shapes.

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

import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from torch import nn

from baldro.core.labels import IGNORE_INDEX
from baldro.core.padmask import DEFAULT_PAD_MASKING, check_pad_masking
from baldro.data.formatting import PromptFormat, encode_prompt, encode_qa_many, format_label
from baldro.errors import ConfigError
from baldro.evaluation import metrics
from baldro.evaluation.answer_drafts import answer_draft
from baldro.evaluation.assemble import add_mia, fill_agg_values, load_retain, memorisation_entries, with_derived
from baldro.evaluation.files import eval_file, prepare_out_dir, summary_file, write_json
from baldro.evaluation.generation import generate_greedy
from baldro.evaluation.model_io import dtype_name, prepare_model
from baldro.evaluation.prefix_scoring import score_prefixed, supports_prefix_scoring
from baldro.evaluation.retain_logs import retain_forget_truth_ratios, retain_mia_auc
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
from baldro.evaluation.tofu_splits import Split, load_tofu_eval_splits

GENERATION_BATCH_FACTOR = 4


def _prob_items(scores: list[SeqScore]) -> dict[str, dict[str, float]]:
    return {str(i): {"prob": s.prob, "avg_loss": s.avg_loss} for i, s in enumerate(scores)}


def _pert_items(pert: list[list[SeqScore]]) -> dict[str, dict[str, list[float]]]:
    return {
        str(i): {"prob": [s.prob for s in row], "avg_loss": [s.avg_loss for s in row]} for i, row in enumerate(pert)
    }


def _entry(items: Mapping[str, Any]) -> dict[str, Any]:
    return {"agg_value": None, "value_by_index": dict(items)}


class TofuScorer:
    """Scores and generates for one TOFU evaluation of a loaded model: tokenises each split once, scores answer
    variants, generates greedy answers, computes ROUGE items (see :func:`evaluate_tofu`)."""

    def __init__(self, model, tokenizer, pad_id, fmt, batch_size, max_new_tokens, max_length, progress,
                 generation_batch_size=None, pad_masking=DEFAULT_PAD_MASKING, draft_answers=True):
        self.model, self.tok, self.pad_id = model, tokenizer, pad_id
        self.fmt = (fmt or PromptFormat.auto()).resolve(tokenizer)
        self.draft_answers = draft_answers
        self.pad_masking = check_pad_masking(pad_masking)
        self.batch_size, self.max_new_tokens, self.max_length, self.progress = (
            batch_size, max_new_tokens, max_length, progress,
        )
        self.generation_batch_size = generation_batch_size or GENERATION_BATCH_FACTOR * batch_size
        self.encoded: dict[tuple[str, str], Any] = {}  # (split name, what) -> token ids: reused by later calls
        self.generations: dict[str, list[str]] = {}  # split name -> greedy generations (generate_splits)

    def encode(self, split: Split, answers: list[str], what: str) -> tuple[list[list[int]], list[list[int]]]:
        """(input ids, labels) of each (question, answer), tokenised once per (split, what) and then reused."""
        if (split.name, what) not in self.encoded:
            self.encode_variants(split, [(what, answers)])
        return self.encoded[(split.name, what)]

    def encode_variants(self, split: Split, variants: list[tuple[str, list[str]]]) -> None:
        """Tokenise several answer variants of the split at once (:func:`encode_qa_many`: each question's prompt
        rendered once, batched tokenizer calls); the questions' generation prompts come with them."""
        if not variants:
            return
        questions = [r["question"] for r in split.rows]
        pairs = [(q, a) for _, answers in variants for q, a in zip(questions, answers)]
        encoded, prompts = encode_qa_many(self.tok, pairs, self.fmt, self.max_length)
        for v, (what, _) in enumerate(variants):
            part = encoded[v * len(questions) : (v + 1) * len(questions)]
            truncated = sum(enc.answer_truncated for enc in part)
            if truncated:
                warnings.warn(
                    f"{split.name} ({what}): {truncated} answers longer than max_length={self.max_length} were truncated",
                    stacklevel=3,
                )
            long = sum(enc.over_length for enc in part)
            if long:
                warnings.warn(
                    f"{split.name} ({what}): {long} items longer than max_length={self.max_length} were kept whole "
                    "(open-unlearning does not truncate chat-template items)",
                    stacklevel=3,
                )
            self.encoded[(split.name, what)] = ([e.input_ids for e in part], [e.labels for e in part])
        self.encoded.setdefault((split.name, "prompts"), [prompts[q] for q in questions])

    def score(self, split: Split, answers: list[str], what: str) -> tuple[list[SeqScore], list[list[int]]]:
        """(scores, labels) of one answer per question: from the packed / cached-prompt path where it applies."""
        ids, labels = self.encode(split, answers, what)
        shared = _shared_prompts([(ids, labels)]) if self._fast_scoring() else None
        if shared is not None:
            rows = score_prefixed(self.model, *shared, self.pad_id, self.batch_size, f"{split.name}: scoring",
                                  self.progress)
            return [row[0] for row in rows], labels
        scores = score_sequences(
            self.model, ids, labels, self.pad_id, self.batch_size, f"{split.name}: scoring", self.progress,
            self.pad_masking,
        )
        return scores, labels

    def _fast_scoring(self) -> bool:
        """Whether the packed-tree / cached-prompt paths apply: the model supports them and padding is masked by
        position (``pad_masking: token`` takes full-sequence passes with open-unlearning's mask)."""
        return self.pad_masking == "position" and supports_prefix_scoring(self.model)

    def score_split(self, split: Split) -> dict[str, Any]:
        """All answer variants of a split: each question's prompt once, its variants as a prefix tree or from its
        cache (:func:`.prefix_scoring.score_prefixed`); one pass over all (question, variant) sequences where the
        variants' prompts differ (truncation) or the model allows neither."""
        variants = _variants(split)
        self.encode_variants(split, [(name, answers) for name, answers in variants
                                     if (split.name, name) not in self.encoded])
        encoded = [self.encode(split, answers, name) for name, answers in variants]
        out: dict[str, Any] = {"labels": {name: enc[1] for (name, _), enc in zip(variants, encoded)},
                               "ids": {name: enc[0] for (name, _), enc in zip(variants, encoded)}}
        shared = _shared_prompts(encoded) if self._fast_scoring() else None
        if shared is not None:
            prompts, answers = shared
            # Min-K%++ needs the vocabulary moments of the forget answers only (members; holdout: :meth:`score`)
            moments = [split.prefix == "forget" and name == "answer" for name, _ in variants]
            scores = score_prefixed(self.model, prompts, answers, self.pad_id, self.batch_size,
                                    f"{split.name}: scoring", self.progress, moments=moments)
            for v, (name, _) in enumerate(variants):
                out[name] = [row[v] for row in scores]
            return out
        ids = [i for enc in encoded for i in enc[0]]
        labels = [lab for enc in encoded for lab in enc[1]]
        flat = score_sequences(self.model, ids, labels, self.pad_id, self.batch_size, f"{split.name}: scoring",
                               self.progress, self.pad_masking)
        n = len(split.rows)
        for j, (name, _) in enumerate(variants):
            out[name] = flat[j * n : (j + 1) * n]
        return out

    def prompts(self, split: Split) -> list[list[int]]:
        """The generation prompt of each question of the split (tokenised once)."""
        key = (split.name, "prompts")
        if key not in self.encoded:  # with every answer variant of the split (one batched tokenisation)
            self.encode_variants(split, [(n, a) for n, a in _variants(split) if (split.name, n) not in self.encoded])
        if key not in self.encoded:
            self.encoded[key] = [encode_prompt(self.tok, r["question"], self.fmt, self.max_length) for r in split.rows]
        return self.encoded[key]

    def generate_splits(self, splits: list[Split], answer_scores: list[list[SeqScore]] | None = None) -> None:
        """Greedy generations of every question of ``splits`` in one pass (batches of ``generation_batch_size``
        questions of similar prompt length, whatever their split), kept for :meth:`generate`. With each split's
        answer scores (``answer_scores``) and ``draft_answers``, the answer tokens their greedy hits predict are
        drafted (and verified) rather than decoded (:mod:`.answer_drafts`)."""
        prompts = [self.prompts(split) for split in splits]
        drafts = None
        if self.draft_answers and answer_scores is not None:
            drafts = [d for split, scores in zip(splits, answer_scores) for d in self.drafts(split, scores)]
        gens = generate_greedy(
            self.model, self.tok, [p for part in prompts for p in part], self.max_new_tokens, self.pad_id,
            self.generation_batch_size, desc="generating", progress=self.progress, pad_masking=self.pad_masking,
            drafts=drafts,
        )
        start = 0
        for split, part in zip(splits, prompts):
            self.generations[split.name] = gens[start : start + len(part)]
            start += len(part)

    def drafts(self, split: Split, scores: list[SeqScore]) -> list[list[int]]:
        """Each question's draft: the leading tokens of its answer that ``scores`` (the answer's) mark as hits."""
        ids, labels = self.encode(split, [r["answer"] for r in split.rows], "answer")
        return [answer_draft(p, i, lab, s.hits) for p, i, lab, s in zip(self.prompts(split), ids, labels, scores)]

    def generate(self, split: Split) -> tuple[list[str], list[str]]:
        """(decoded prompts, greedy generations) of the split's questions (from :meth:`generate_splits` when it ran)."""
        if split.name not in self.generations:
            self.generate_splits([split])
        prompts = self.prompts(split)
        return [self._text(p) for p in prompts], self.generations[split.name]

    def _text(self, ids: list[int]) -> str:
        return self.tok.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=True)

    def rouge(self, inputs: list[str], gens: list[str], ids: list[list[int]]) -> dict[str, dict[str, Any]]:
        """ROUGE items of generations against each item's answer text, found as open-unlearning's
        ``eval_text_similarity`` finds it: the whole item ``ids`` decoded, the decoded prompt (``inputs``) removed,
        stripped — so an answer character merged into the prompt's last token (Llama-2's ``]"``) or an answer word
        under the prompt mask (``Answer: ``) is part of the ground truth."""
        items = {}
        for i, (prompt, row, gen) in enumerate(zip(inputs, ids, gens)):
            truth = self._text(row).replace(prompt, "").strip()
            items[str(i)] = {**metrics.rouge_scores(gen, truth), "input": prompt, "ground_truth": truth, "generation": gen}
        return items


def _variants(split: Split) -> list[tuple[str, list[str]]]:
    """(name, answers) of each answer variant of the split: answer, paraphrased answer, perturbed answers."""
    variants = [("answer", [r["answer"] for r in split.rows])]
    if split.has_para:
        variants.append(("para", [r["paraphrased_answer"] for r in split.rows]))
    return variants + [(f"pert{k}", [r["perturbed_answer"][k] for r in split.rows]) for k in range(split.n_pert)]


def _shared_prompts(
    encoded: list[tuple[list[list[int]], list[list[int]]]],
) -> tuple[list[list[int]], list[list[list[int]]]] | None:
    """(prompt of each row, its answers per variant) when every variant of a row has the same prompt tokens followed
    by labelled answer tokens only (None otherwise, e.g. when truncation shortened one variant's prompt)."""
    prompts, answers = [], []
    for r in range(len(encoded[0][0])):
        ids, labels = encoded[0][0][r], encoded[0][1][r]
        n = next((t for t, lab in enumerate(labels) if lab != IGNORE_INDEX), len(labels))
        prompt, row = ids[:n], []
        for var_ids, var_labels in encoded:
            tail = var_labels[r][n:]
            if var_ids[r][:n] != prompt or len(tail) == 0 or IGNORE_INDEX in tail or var_ids[r][n:] != tail:
                return None
            row.append(tail)
        prompts.append(prompt)
        answers.append(row)
    return prompts, answers


def _transpose(per_variant: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, list[Any]]]:
    """{index: {field: [value of variant k]}} from one items dict per variant (open-unlearning's multi-answer shape)."""
    return {i: {f: [v[i][f] for v in per_variant] for f in per_variant[0][i]} for i in per_variant[0]}


def _truth_ratio_items(correct: list[SeqScore], pert: list[list[SeqScore]]) -> dict[str, dict[str, float]]:
    tr = metrics.truth_ratios([s.avg_loss for s in correct], [[s.avg_loss for s in row] for row in pert])
    return {str(i): {"score": float(v)} for i, v in enumerate(tr)}


def _add_split(scorer: TofuScorer, split: Split, sc: dict[str, Any], out: dict[str, Any],
               reasons: dict[str, str]) -> None:
    """Entries of one split from its scores ``sc`` (probabilities, ROUGE, truth ratio, normalised probability)."""
    prefix, notes = split.prefix, split.notes
    pert = [list(row) for row in zip(*(sc[f"pert{k}"] for k in range(split.n_pert)))] if split.n_pert else None
    qa = prefix in ("forget", "retain")  # splits with paraphrased answers
    out[f"{prefix}_Q_A_Prob"] = _entry(_prob_items(sc["answer"]))
    if qa:
        _put(out, reasons, f"{prefix}_Q_A_PARA_Prob", split.has_para, lambda: _prob_items(sc["para"]), notes.get("para"))
    _put(out, reasons, f"{prefix}_Q_A_PERT_Prob", pert is not None, lambda: _pert_items(pert), notes.get("pert"))
    inputs, gens = scorer.generate(split)
    out[f"{prefix}_Q_A_ROUGE"] = _entry(scorer.rouge(inputs, gens, sc["ids"]["answer"]))
    if qa:
        _put(out, reasons, f"{prefix}_Q_A_PARA_ROUGE", split.has_para,
             lambda: scorer.rouge(inputs, gens, sc["ids"]["para"]), notes.get("para"))
        _put(out, reasons, f"{prefix}_Q_A_PERT_ROUGE", pert is not None,
             lambda: _transpose([scorer.rouge(inputs, gens, sc["ids"][f"pert{k}"]) for k in range(split.n_pert)]),
             notes.get("pert"))
    correct = sc.get("para") if qa else sc["answer"]
    _put(out, reasons, "forget_truth_ratio" if prefix == "forget" else f"{prefix}_Truth_Ratio",
         correct is not None and pert is not None, lambda: _truth_ratio_items(correct, pert),
         notes.get("para") or notes.get("pert"))
    if not qa:
        _put(out, reasons, f"{prefix}_Q_A_Prob_normalised", pert is not None,
             lambda: _normalised_items(sc["answer"], pert), notes.get("pert"))


def _put(
    out: dict[str, Any], reasons: dict[str, str], name: str, ok: bool, make: Callable[[], dict], reason: str | None
) -> None:
    """``out[name]`` = an entry of ``make()`` when its inputs are there (``ok``), else ``reasons[name]`` = ``reason``."""
    if ok:
        out[name] = _entry(make())
    else:
        reasons[name] = reason or "its inputs are missing"


def _normalised_items(answer: list[SeqScore], pert: list[list[SeqScore]]) -> dict[str, dict[str, float]]:
    norm = metrics.normalised_probs([s.prob for s in answer], [[s.prob for s in row] for row in pert])
    return {str(i): {"prob": float(v)} for i, v in enumerate(norm)}


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
        _add_split(scorer, splits[prefix], scores[prefix], out, reasons)
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
