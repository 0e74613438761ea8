"""The per-item metric entries of one TOFU split in TOFU_EVAL.json, with open-unlearning's names and shapes, from the
split's answer-variant scores and its greedy generations: ``<p>_Q_A_Prob`` / ``_PARA_Prob`` / ``_PERT_Prob``
(probability and average loss), ``<p>_Q_A_ROUGE`` / ``_PARA_ROUGE`` / ``_PERT_ROUGE``, the truth ratio
(``forget_truth_ratio`` / ``<p>_Truth_Ratio``) and ``<p>_Q_A_Prob_normalised``. A metric whose inputs the split lacks
is left out, its reason recorded. Each entry's ``agg_value`` is filled later (:func:`.assemble.fill_agg_values`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from baldro.evaluation import metrics
from baldro.evaluation.scoring import SeqScore
from baldro.evaluation.tofu_splits import Split

Items = dict[str, dict[str, Any]]


def entry(items: Mapping[str, Any]) -> dict[str, Any]:
    """A metric entry: per-item values, aggregate still to fill."""
    return {"agg_value": None, "value_by_index": dict(items)}


def prob_items(scores: list[SeqScore]) -> Items:
    return {str(i): {"prob": s.prob, "avg_loss": s.avg_loss} for i, s in enumerate(scores)}


def pert_items(pert: list[list[SeqScore]]) -> Items:
    return {
        str(i): {"prob": [s.prob for s in row], "avg_loss": [s.avg_loss for s in row]} for i, row in enumerate(pert)
    }


def truth_ratio_items(correct: list[SeqScore], pert: list[list[SeqScore]]) -> Items:
    tr = metrics.truth_ratios([s.avg_loss for s in correct], [[s.avg_loss for s in row] for row in pert])
    return {str(i): {"score": float(v)} for i, v in enumerate(tr)}


def normalised_items(answer: list[SeqScore], pert: list[list[SeqScore]]) -> Items:
    norm = metrics.normalised_probs([s.prob for s in answer], [[s.prob for s in row] for row in pert])
    return {str(i): {"prob": float(v)} for i, v in enumerate(norm)}


def rouge_items(decode: Callable[[list[int]], str], inputs: list[str], gens: list[str], ids: list[list[int]]) -> Items:
    """ROUGE items of generations against each item's answer text, found as open-unlearning's
    ``eval_text_similarity`` finds it: the whole item ``ids`` decoded, the decoded prompt (``inputs``) removed,
    stripped — so an answer character merged into the prompt's last token (Llama-2's ``]"``) or an answer word
    under the prompt mask (``Answer: ``) is part of the ground truth."""
    items = {}
    for i, (prompt, row, gen) in enumerate(zip(inputs, ids, gens)):
        truth = decode(row).replace(prompt, "").strip()
        items[str(i)] = {**metrics.rouge_scores(gen, truth), "input": prompt, "ground_truth": truth, "generation": gen}
    return items


def transpose(per_variant: list[Items]) -> dict[str, dict[str, list[Any]]]:
    """{index: {field: [value of variant k]}} from one items dict per variant (open-unlearning's multi-answer shape)."""
    return {i: {f: [v[i][f] for v in per_variant] for f in per_variant[0][i]} for i in per_variant[0]}


def put(out: dict[str, Any], reasons: dict[str, str], name: str, ok: bool, make: Callable[[], Items],
        reason: str | None) -> None:
    """``out[name]`` = an entry of ``make()`` when its inputs are there (``ok``), else ``reasons[name]`` = ``reason``."""
    if ok:
        out[name] = entry(make())
    else:
        reasons[name] = reason or "its inputs are missing"


def add_split_entries(split: Split, sc: dict[str, Any], rouge: Callable[[list[list[int]]], Items], out: dict[str, Any],
                      reasons: dict[str, str]) -> None:
    """Entries of one split from its scores ``sc`` (each variant's scores, and its token ids under ``sc["ids"]``)
    and ``rouge(ids)``: the ROUGE items of the split's generations against the answers ``ids``."""
    prefix, notes = split.prefix, split.notes
    pert = [list(row) for row in zip(*(sc[f"pert{k}"] for k in range(split.n_pert)))] if split.n_pert else None
    qa = prefix in ("forget", "retain")  # splits with paraphrased answers
    out[f"{prefix}_Q_A_Prob"] = entry(prob_items(sc["answer"]))
    if qa:
        put(out, reasons, f"{prefix}_Q_A_PARA_Prob", split.has_para, lambda: prob_items(sc["para"]), notes.get("para"))
    put(out, reasons, f"{prefix}_Q_A_PERT_Prob", pert is not None, lambda: pert_items(pert), notes.get("pert"))
    out[f"{prefix}_Q_A_ROUGE"] = entry(rouge(sc["ids"]["answer"]))
    if qa:
        put(out, reasons, f"{prefix}_Q_A_PARA_ROUGE", split.has_para, lambda: rouge(sc["ids"]["para"]),
            notes.get("para"))
        put(out, reasons, f"{prefix}_Q_A_PERT_ROUGE", pert is not None,
            lambda: transpose([rouge(sc["ids"][f"pert{k}"]) for k in range(split.n_pert)]), notes.get("pert"))
    correct = sc.get("para") if qa else sc["answer"]
    put(out, reasons, "forget_truth_ratio" if prefix == "forget" else f"{prefix}_Truth_Ratio",
        correct is not None and pert is not None, lambda: truth_ratio_items(correct, pert),
        notes.get("para") or notes.get("pert"))
    if not qa:
        put(out, reasons, f"{prefix}_Q_A_Prob_normalised", pert is not None,
            lambda: normalised_items(sc["answer"], pert), notes.get("pert"))
