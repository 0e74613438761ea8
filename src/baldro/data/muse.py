"""MUSE (Shi et al. 2024, ``muse-bench/MUSE-News`` / ``MUSE-Books``) from a local folder or the hub.

Local layout (``.json`` = a JSON list or JSON Lines, ``.jsonl``; raw text may also be one ``.txt`` document)::

    raw/{forget,retain1,retain2,holdout}                  text: strings, or rows with "text"
    knowmem/{forget_qa,retain_qa,forget_qa_icl,retain_qa_icl}   rows with "question", "answer"
    verbmem/forget                                        rows with "prompt", "gt"
    privleak/{forget,retain,holdout}                      text, like raw

The MUSE authors' GitHub layout (``data/<corpus>/...``) is read as it is: ``retain2_qa``, ``retain2_qa_icl`` and
``privleak/retain2`` stand for the hub's ``retain_*`` names; where ``raw/`` holds both ``forget.json`` and
``forget.txt`` the JSON list of documents is used (with a warning naming it); empty documents are skipped with one
warning giving their count.

On the hub, ``subset`` is the config and ``split`` the split: ``load_dataset(id, subset, split=split)``.
Raw text for training is cut into ``max_length``-token chunks (2048 by default) as open-unlearning does (see
:mod:`baldro.data.pretraining`).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from baldro.data.hub import load_hub_rows, looks_like_hub_id
from baldro.data.pretraining import IGNORE_INDEX, chunk_texts, pretraining_item
from baldro.data.rows import check_object, check_str, numbered, read_records
from baldro.errors import DataError

MUSE_LAYOUT: dict[str, tuple[str, ...]] = {
    "raw": ("forget", "retain1", "retain2", "holdout"),
    "knowmem": ("forget_qa", "retain_qa", "forget_qa_icl", "retain_qa_icl"),
    "verbmem": ("forget",),
    "privleak": ("forget", "retain", "holdout"),
}
MUSE_FIELDS: dict[str, tuple[str, ...]] = {
    "raw": ("text",),
    "knowmem": ("question", "answer"),
    "verbmem": ("prompt", "gt"),
    "privleak": ("text",),
}
MUSE_SUFFIXES = (".json", ".jsonl", ".txt")
# The MUSE authors' GitHub repository (data/<corpus>/...) names the retain splits after raw/retain2.
MUSE_ALIASES: dict[tuple[str, str], tuple[str, ...]] = {
    ("knowmem", "retain_qa"): ("retain2_qa",),
    ("knowmem", "retain_qa_icl"): ("retain2_qa_icl",),
    ("privleak", "retain"): ("retain2",),
}
DEFAULT_CHUNK_LENGTH = 2048


def _check_name(subset: str, split: str) -> None:
    if subset not in MUSE_LAYOUT:
        raise DataError(f"unknown MUSE subset '{subset}': expected one of {', '.join(MUSE_LAYOUT)}")
    if split not in MUSE_LAYOUT[subset]:
        raise DataError(f"unknown MUSE split '{subset}/{split}': expected one of {', '.join(MUSE_LAYOUT[subset])}")


def _stems(subset: str, split: str) -> tuple[str, ...]:
    """File names a split may have: the hub's name, then the MUSE GitHub repository's (``retain2_qa`` etc.)."""
    return (split, *MUSE_ALIASES.get((subset, split), ()))


def muse_files(folder: Path, subset: str, split: str) -> list[Path]:
    """Every file of ``subset/split`` present in a local folder, under either naming."""
    suffixes = MUSE_SUFFIXES if MUSE_FIELDS[subset] == ("text",) else MUSE_SUFFIXES[:2]
    return [
        folder / subset / f"{stem}{s}"
        for stem in _stems(subset, split)
        for s in suffixes
        if (folder / subset / f"{stem}{s}").is_file()
    ]


def _muse_file(folder: Path, subset: str, split: str) -> Path:
    found = muse_files(folder, subset, split)
    structured = [f for f in found if f.suffix != ".txt"]
    if len(found) > 1 and len(structured) == 1:
        # the MUSE GitHub repository ships raw/forget.json (documents) and raw/forget.txt (the same text joined)
        skipped = ", ".join(f.name for f in found if f != structured[0])
        warnings.warn(f"{folder}: MUSE split '{subset}/{split}': using {structured[0].name} (not {skipped})", stacklevel=3)
        return structured[0]
    if len(found) != 1:
        names = ", ".join(f"{subset}/{stem}{s}" for stem in _stems(subset, split) for s in MUSE_SUFFIXES)
        what = "several files (" + ", ".join(f.name for f in found) + ")" if found else "no file"
        raise DataError(f"{folder}: {what} for MUSE split '{subset}/{split}' (expected exactly one of {names})")
    return found[0]


def _validate(where: str, subset: str, records: list[tuple[str, Any]]) -> list[dict]:
    fields = MUSE_FIELDS[subset]
    rows = []
    empty = []
    for pos, value in records:
        if fields == ("text",) and isinstance(value, str):
            value = {"text": value}
        row = check_object(where, pos, value)
        if fields == ("text",) and isinstance(row.get("text"), str) and not row["text"].strip():
            empty.append(pos)
            continue
        for field in fields:
            check_str(where, pos, row, field)
        rows.append(row)
    if empty:
        warnings.warn(
            f"{where}: skipped {len(empty)} empty document(s) ({', '.join(empty[:3])}{', …' if len(empty) > 3 else ''})",
            stacklevel=3,
        )
    if not rows:
        raise DataError(f"{where}: no rows" + (" (every document is empty)" if empty else ""))
    return rows


def is_muse_folder(path: str | Path) -> bool:
    """A folder with at least one of MUSE's subset folders (raw/, knowmem/, verbmem/, privleak/)."""
    p = Path(path)
    return p.is_dir() and any((p / s).is_dir() for s in MUSE_LAYOUT)


def load_muse(source: str | Path, subset: str, split: str) -> list[dict]:
    """Validated rows of ``subset/split`` (e.g. ``"raw", "forget"`` → ``[{"text": ...}]``)."""
    _check_name(subset, split)
    path = Path(source).expanduser()
    if not path.is_dir():
        if path.exists() or not (isinstance(source, str) and looks_like_hub_id(source)):
            raise DataError(f"{path}: folder not found; expected a MUSE folder (raw/, knowmem/, …) or a hub id")
        where = f"{source}:{subset}/{split}"
        return _validate(where, subset, numbered(load_hub_rows(str(source), subset, split)))
    file = _muse_file(path, subset, split)
    if file.suffix == ".txt":
        text = file.read_text(encoding="utf-8")
        return _validate(str(file), subset, [("file", text)])
    return _validate(str(file), subset, read_records(file))


def muse_split_counts(source: str | Path, only: list[str] | None = None) -> dict[str, int]:
    """``{"subset/split": row_count}`` for every split present in a local folder (all of them for a hub id); with
    ``only``, just those splits (the others are not read, so a broken unrelated file does not stop the count)."""
    if only is not None:
        for name in only:
            subset, _, split = name.partition("/")
            _check_name(subset, split)
    path = Path(source).expanduser()
    out = {}
    for subset, splits in MUSE_LAYOUT.items():
        for split in splits:
            name = f"{subset}/{split}"
            if only is not None and name not in only:
                continue
            if not path.is_dir() or muse_files(path, subset, split):
                out[name] = len(load_muse(source, subset, split))
    if not out:
        if only is not None:
            raise DataError(f"{path}: no file for MUSE split(s) {', '.join(only)}")
        raise DataError(f"{path}: no MUSE files found (expected e.g. raw/forget.json, knowmem/forget_qa.json)")
    return out


class TextChunkDataset(Dataset):
    """MUSE raw text for language-model training, as open-unlearning's ``PretrainingDataset``: documents joined with
    ``"\n\n"``, cut into ``max_length``-token chunks, each re-tokenised with BOS (see :mod:`baldro.data.pretraining`);
    item = ``{"input_ids", "attention_mask", "labels", "index"}`` with labels on every text token."""

    def __init__(self, items: list[tuple[list[int], list[int]]]) -> None:
        self.items = [
            {"input_ids": list(ids), "attention_mask": [1] * len(ids), "labels": list(labels), "index": i}
            for i, (ids, labels) in enumerate(pair for pair in items if any(t != IGNORE_INDEX for t in pair[1]))
        ]

    @classmethod
    def from_texts(cls, texts: list[str], tokenizer: Any, max_length: int = DEFAULT_CHUNK_LENGTH) -> TextChunkDataset:
        return cls([pretraining_item(tokenizer, "", c, max_length) for c in chunk_texts(texts, tokenizer, max_length)])

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.items[i]
