"""TOFU-style splits (Maini et al. 2024, ``locuslab/TOFU``) from a local folder or the hub, validated row by row.

Split names and schemas:

* ``full``, ``forgetNN``, ``retainNN``, ``holdoutNN`` and ``general`` (the embedded benchmark's pre-training split):
  non-empty string ``question`` and ``answer``.
* ``forgetNN_perturbed``, ``retain_perturbed``: additionally ``paraphrased_answer`` (string) and ``perturbed_answer``
  (non-empty list of strings); ``paraphrased_question`` is optional.
* ``real_authors_perturbed``, ``world_facts_perturbed``: ``question``, ``answer`` and ``perturbed_answer``.

A local folder holds ``<split>.json`` (JSON Lines, as TOFU ships it, or one JSON array), ``<split>.jsonl`` or
``<split>.parquet``. A hub id loads config ``<split>`` with ``datasets.load_dataset(id, split)``. Extra fields are kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from baldro.data.hub import hub_config_names, load_hub_rows, looks_like_hub_id
from baldro.data.rows import ROW_SUFFIXES, check_object, check_str, check_str_list, numbered, read_records
from baldro.errors import DataError

Schema = Literal["qa", "perturbed", "multiple_choice"]

_QA = re.compile(r"^(full|general|forget\d{2}|retain\d{2}|holdout\d{2})$")
_PERTURBED = re.compile(r"^(forget\d{2}_perturbed|retain_perturbed)$")
_MULTIPLE = re.compile(r"^(real_authors_perturbed|world_facts_perturbed)$")
SPLIT_RULES = (
    "full, general (the embedded benchmark's pre-training split), forgetNN, retainNN, holdoutNN, forgetNN_perturbed, retain_perturbed, "
    "real_authors_perturbed, world_facts_perturbed (NN = two digits, e.g. forget10)"
)


def split_schema(split: str) -> Schema:
    """Which schema a split name follows; :class:`DataError` for a name TOFU does not have."""
    if _QA.match(split):
        return "qa"
    if _PERTURBED.match(split):
        return "perturbed"
    if _MULTIPLE.match(split):
        return "multiple_choice"
    raise DataError(f"unknown TOFU split '{split}': expected one of {SPLIT_RULES}")


def is_split_name(name: str) -> bool:
    try:
        split_schema(name)
    except DataError:
        return False
    return True


@dataclass(frozen=True)
class SplitPartners:
    """The splits that go with one forget split (TOFU's conventions: forget10 → retain90, holdout10, …)."""

    forget: str
    retain: str
    holdout: str
    forget_perturbed: str
    retain_perturbed: str = "retain_perturbed"
    real_authors: str = "real_authors_perturbed"
    world_facts: str = "world_facts_perturbed"


def partner_splits(forget: str) -> SplitPartners:
    """forgetNN → retain(100−NN), holdoutNN, forgetNN_perturbed."""
    m = re.fullmatch(r"forget(\d{2})", forget)
    if not m:
        raise DataError(f"'{forget}' is not a forget split: expected forgetNN, e.g. forget01, forget05, forget10")
    pct = int(m.group(1))
    if not 0 < pct < 100:
        raise DataError(f"'{forget}': the forget percentage must be between 01 and 99")
    return SplitPartners(
        forget=forget,
        retain=f"retain{100 - pct:02d}",
        holdout=f"holdout{pct:02d}",
        forget_perturbed=f"{forget}_perturbed",
    )


def validate_rows(where: str, split: str, records: list[tuple[str, object]]) -> list[dict]:
    """Check every ``(position, row)`` against the split's schema; returns the rows."""
    schema = split_schema(split)
    rows = []
    for pos, value in records:
        row = check_object(where, pos, value)
        check_str(where, pos, row, "question")
        check_str(where, pos, row, "answer")
        if schema == "perturbed":
            check_str(where, pos, row, "paraphrased_answer")
            if "paraphrased_question" in row:
                check_str(where, pos, row, "paraphrased_question")
        if schema in ("perturbed", "multiple_choice"):
            check_str_list(where, pos, row, "perturbed_answer")
        rows.append(row)
    if not rows:
        raise DataError(f"{where}: no rows (expected one JSON object per line)")
    return rows


def split_file(folder: Path, split: str) -> Path:
    """The one file holding ``split`` in ``folder``."""
    found = [folder / f"{split}{s}" for s in ROW_SUFFIXES if (folder / f"{split}{s}").is_file()]
    if len(found) > 1:
        raise DataError(f"{folder}: split '{split}' has several files ({', '.join(p.name for p in found)}); keep one")
    if not found:
        have = sorted(local_splits(folder))
        raise DataError(
            f"{folder}: no file for split '{split}' (looked for {split}.json, {split}.jsonl, {split}.parquet); "
            f"splits here: {', '.join(have) or 'none'}"
        )
    return found[0]


def local_splits(folder: Path) -> dict[str, Path]:
    """``{split: file}`` for every file in ``folder`` named like a TOFU split."""
    out: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix in ROW_SUFFIXES and is_split_name(path.stem):
            out.setdefault(path.stem, path)
    return out


def _local_folder(source: str | Path) -> Path | None:
    """The folder for a local source, None for a hub id; :class:`DataError` for a path that is not a folder."""
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise DataError(f"{path}: is a file; expected a folder holding <split>.json files (e.g. forget10.json)")
    if isinstance(source, str) and looks_like_hub_id(source):
        return None
    raise DataError(f"{path}: folder not found; expected a folder of TOFU split files or a hub id like locuslab/TOFU")


def load_tofu_split(source: str | Path, split: str) -> list[dict]:
    """Validated rows of one split from a local folder or a hub id (see the module docstring)."""
    split_schema(split)
    folder = _local_folder(source)
    if folder is None:
        repo = str(source)
        return validate_rows(f"{repo}:{split}", split, numbered(load_hub_rows(repo, split)))
    path = split_file(folder, split)
    return validate_rows(str(path), split, read_records(path))


def tofu_split_counts(source: str | Path, splits: list[str] | None = None) -> dict[str, int]:
    """``{split: row_count}`` of every split in the source (or the given ones), each validated."""
    folder = _local_folder(source)
    if splits is None:
        if folder is None:
            splits = [c for c in hub_config_names(str(source)) if is_split_name(c)]
        else:
            splits = list(local_splits(folder))
        if not splits:
            raise DataError(f"{source}: no TOFU split files found (expected e.g. full.json, forget10.json)")
    return {s: len(load_tofu_split(source, s)) for s in splits}
