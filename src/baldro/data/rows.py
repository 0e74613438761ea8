"""Reading data row files (JSON Lines, JSON arrays, Parquet) and checking fields, with errors that name file, row, field.

Positions in messages are 1-based: ``line N`` for JSON Lines (the line in the file), ``row N`` for JSON arrays,
Parquet files and hub splits.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from baldro.errors import DataError

ROW_SUFFIXES = (".json", ".jsonl", ".parquet")


def read_records(path: Path) -> list[tuple[str, Any]]:
    """``[(position, value)]`` from a ``.json`` (JSON Lines or one JSON array), ``.jsonl`` or ``.parquet`` file."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if path.suffix == ".parquet":
        return _read_parquet(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise DataError(
            f"{path}: not UTF-8 text ({err.reason} at byte {err.start}); expected JSON or JSON Lines"
        ) from err
    if path.suffix == ".json" and text.lstrip().startswith("["):
        return _read_json_array(path, text)
    return list(_read_json_lines(path, text))


def _read_json_array(path: Path, text: str) -> list[tuple[str, Any]]:
    try:
        values = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: line {err.lineno}: malformed JSON ({err.msg}); expected one JSON array") from err
    if not isinstance(values, list):
        raise DataError(f"{path}: expected a JSON array of rows or one JSON object per line")
    return [(f"row {i + 1}", v) for i, v in enumerate(values)]


def _read_json_lines(path: Path, text: str) -> Iterator[tuple[str, Any]]:
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield f"line {n}", json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(
                f"{path}: line {n}: malformed JSON ({err.msg} at column {err.colno}); expected one JSON object per line"
            ) from err


def _read_parquet(path: Path) -> list[tuple[str, Any]]:
    import pyarrow.parquet as pq

    try:
        rows = pq.read_table(path).to_pylist()
    except Exception as err:  # noqa: BLE001 - pyarrow raises several types for unreadable files
        raise DataError(f"{path}: cannot read Parquet file ({err})") from err
    return [(f"row {i + 1}", r) for i, r in enumerate(rows)]


def numbered(rows: Iterable[Any]) -> list[tuple[str, Any]]:
    """Rows already in memory (e.g. from the hub) with 1-based ``row N`` positions."""
    return [(f"row {i + 1}", r) for i, r in enumerate(rows)]


def check_object(where: str, pos: str, value: Any) -> dict:
    if not isinstance(value, dict):
        raise DataError(f"{where}: {pos}: expected a JSON object with named fields, got {type(value).__name__}")
    return value


def check_str(where: str, pos: str, row: dict, field: str, non_empty: bool = True) -> str:
    """``row[field]`` must be a string (non-empty after stripping when ``non_empty``)."""
    if field not in row:
        raise DataError(f"{where}: {pos}: missing field '{field}' (expected a string)")
    value = row[field]
    if not isinstance(value, str):
        raise DataError(f"{where}: {pos}: field '{field}' must be a string, got {type(value).__name__}")
    if non_empty and not value.strip():
        raise DataError(f"{where}: {pos}: field '{field}' is empty (expected non-empty text)")
    return value


def check_str_list(where: str, pos: str, row: dict, field: str) -> list[str]:
    """``row[field]`` must be a non-empty list of non-empty strings."""
    if field not in row:
        raise DataError(f"{where}: {pos}: missing field '{field}' (expected a non-empty list of strings)")
    value = row[field]
    if not isinstance(value, list) or not value:
        got = "an empty list" if isinstance(value, list) else type(value).__name__
        raise DataError(f"{where}: {pos}: field '{field}' must be a non-empty list of strings, got {got}")
    for k, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise DataError(
                f"{where}: {pos}: field '{field}' item {k} must be a non-empty string, got {type(item).__name__} {item!r}"
            )
    return value
