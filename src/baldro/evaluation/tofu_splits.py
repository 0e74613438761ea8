"""The splits a TOFU evaluation reads, and which answer fields they have (missing ones skip metrics, not the run)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from baldro.data.rows import read_records
from baldro.data.tofu import load_tofu_split, local_splits, partner_splits, validate_rows
from baldro.errors import DataError

HOLDOUT_MISSING = (
    "needs the holdout split '{split}' (questions the model never saw), which is not in {source}; add "
    "{split}.json (locuslab/TOFU publishes holdout01/05/10) to evaluate membership inference"
)


@dataclass
class Split:
    """Rows of one evaluated split and which answer fields every row has."""

    prefix: str
    name: str
    rows: list[dict]
    has_para: bool = False
    n_pert: int = 0
    notes: dict[str, str] = field(default_factory=dict)


def _read_split(source: str | Path, split: str) -> list[dict] | None:
    """Validated rows; rows with only question/answer when the full schema fails; None when the split is absent."""
    folder = Path(source).expanduser()
    if folder.is_dir():
        files = local_splits(folder)
        if split not in files:
            return None
        try:
            return load_tofu_split(folder, split)
        except DataError:
            return validate_rows(str(files[split]), "full", read_records(files[split]))
    return load_tofu_split(source, split)


def _fields(split: Split) -> Split:
    rows = split.rows
    split.has_para = all(isinstance(r.get("paraphrased_answer"), str) and r["paraphrased_answer"] for r in rows)
    if not split.has_para:
        split.notes["para"] = f"split '{split.name}' has no 'paraphrased_answer' in every row"
    perts = [r.get("perturbed_answer") for r in rows]
    ok = all(isinstance(p, list) and p and all(isinstance(a, str) for a in p) for p in perts)
    if ok and len({len(p) for p in perts}) == 1:
        split.n_pert = len(perts[0])
    else:
        why = "has no 'perturbed_answer' list in every row" if not ok else "has 'perturbed_answer' lists of unequal length"
        split.notes["pert"] = f"split '{split.name}' {why}"
    return split


def _hint_perturbed_file(split: Split, wanted: str, source: str | Path) -> None:
    """Name the file that brings the paraphrased / perturbed answers (truth ratio, Forget Quality)."""
    local = Path(source).expanduser().is_dir()
    if split.name != wanted:
        where = f"add {wanted}.json to {source}" if local else f"{source} has no '{wanted}' split"
    else:
        where = f"replace {wanted}.json in {source} by TOFU's" if local else f"use TOFU's '{wanted}' split"
    for key in ("para", "pert"):
        if key in split.notes:
            split.notes[key] += f"; {where} ({wanted}: TOFU's file with 'paraphrased_answer' and 'perturbed_answer')"


def load_tofu_eval_splits(source: str | Path, forget_split: str, max_items: int | None = None) -> tuple[dict, dict]:
    """({prefix: Split}, {metric: reason}) for the forget, retain, ra, wf and holdout splits of ``source``."""
    parts = partner_splits(forget_split)
    wanted = [
        ("forget", [parts.forget_perturbed, parts.forget]),
        ("retain", [parts.retain_perturbed]),
        ("ra", [parts.real_authors]),
        ("wf", [parts.world_facts]),
        ("holdout", [parts.holdout]),
    ]
    splits: dict[str, Split] = {}
    skipped: dict[str, str] = {}
    hub_errors: dict[str, str] = {}
    for prefix, names in wanted:
        for name in names:
            try:
                rows = _read_split(source, name)
            except DataError as err:  # a hub split that cannot be loaded; local files raise before this
                if prefix == "forget" or Path(source).expanduser().is_dir():
                    raise
                rows, hub_errors[prefix] = None, str(err)
            if rows is not None:
                splits[prefix] = _fields(Split(prefix, name, rows[:max_items] if max_items else rows))
                if prefix == "forget":
                    _hint_perturbed_file(splits[prefix], parts.forget_perturbed, source)
                break
        else:
            if prefix == "forget":
                raise DataError(f"{source}: no '{parts.forget_perturbed}' or '{parts.forget}' split to evaluate")
            reason = (
                HOLDOUT_MISSING.format(split=parts.holdout, source=source)
                if prefix == "holdout"
                else f"split '{names[0]}' is not in {source}"
            )
            skipped[prefix] = hub_errors.get(prefix, reason)
    return splits, skipped
