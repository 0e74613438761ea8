"""Checks on files baldro reads back (its own outputs, a model's weights): a file torn by a crash, a full disk or a
copy cut short is reported as one clear line naming it, never as a library traceback.

- :func:`safetensors_problem`: a ``.safetensors`` file is 8 bytes of little-endian header length n, n bytes of JSON
  header, then the tensor data; the header's largest ``data_offsets`` end + 8 + n must equal the file size (the check
  the ``safetensors`` loader makes when it opens the file, made here without loading any tensor).
- :func:`read_jsonl`: JSON Lines whose last line may be torn by a crash (no newline, or not JSON); such a tail can be
  dropped (with the reason returned), anything malformed before it is an error naming the line.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any

from baldro.errors import DataError

MAX_HEADER = 100 * 1024 * 1024  # the safetensors library's own limit on the header


def safetensors_problem(path: str | Path, names: tuple[str, ...] | None = None, ndim: int | None = None) -> str | None:
    """Why ``path`` is not a complete ``.safetensors`` file (``None`` when it is): missing, empty, truncated, a
    header that is not JSON, or a size that differs from what its header declares; with ``names`` / ``ndim``, also
    a tensor of another name or number of dimensions."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                return f"{'empty' if size == 0 else 'truncated'} ({size} bytes)"
            (n,) = struct.unpack("<Q", head)
            if n > min(MAX_HEADER, size - 8):
                return f"truncated or not a safetensors file (header of {n} bytes, file of {size} bytes)"
            header = json.loads(fh.read(n).decode("utf-8"))
    except FileNotFoundError:
        return "missing"
    except (UnicodeDecodeError, json.JSONDecodeError):
        return "the header is not JSON (not a safetensors file, or damaged)"
    if not isinstance(header, dict):
        return "the header is not a JSON object"
    end = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)):
            return f"tensor {name!r} has no valid data_offsets in the header"
        end = max(end, offsets[1])
        if names is not None and name not in names:
            return f"holds a tensor {name!r}, expected only {', '.join(names)}"
        if ndim is not None and len(entry.get("shape") or []) != ndim:
            return f"tensor {name!r} has shape {entry.get('shape')}, expected {ndim} dimension(s)"
    expected = 8 + n + end
    if size != expected:
        return f"{'truncated' if size < expected else 'has extra bytes'}: {size} bytes, its header needs {expected}"
    return None


def check_safetensors(path: str | Path, fix: str, names: tuple[str, ...] | None = None, ndim: int | None = None) -> None:
    """:class:`DataError` ``<path>: <problem>; <fix>`` unless ``path`` is a complete safetensors file (of tensors
    ``names`` with ``ndim`` dimensions, when given)."""
    problem = safetensors_problem(path, names, ndim)
    if problem is not None:
        raise DataError(f"{path}: {problem}; {fix}")


def read_jsonl(path: str | Path, drop_torn_tail: bool = False) -> tuple[list[Any], str | None]:
    """``(values, dropped)``: the JSON value of every line of ``path`` (blank lines skipped). A malformed last line,
    or a last line without its newline, is a torn tail: with ``drop_torn_tail`` it is left out and ``dropped`` says
    why, otherwise it is a :class:`DataError` like any malformed line (naming the file and line)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not UTF-8 text (byte {err.start}); the file is damaged: restore or delete it") from err
    lines = text.split("\n")
    complete, tail = lines[:-1], lines[-1]  # ``tail`` is what follows the last newline ("" for a whole file)
    values: list[Any] = []
    for number, line in enumerate(complete, start=1):
        if not line.strip():
            continue
        try:
            values.append(json.loads(line))
        except json.JSONDecodeError as err:
            if number == len(complete) and not tail.strip() and drop_torn_tail:
                return values, f"line {number} is not JSON ({err.msg})"
            raise DataError(f"{path}: line {number}: malformed JSON ({err.msg}); the file is damaged: restore or "
                            "delete it") from err
    if tail.strip():
        if drop_torn_tail:
            return values, f"line {len(complete) + 1} has no end of line (cut off by a crash)"
        raise DataError(f"{path}: line {len(complete) + 1} is cut off (no end of line); the file was not written to "
                        "the end: restore or delete it")
    return values, None


def replace_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file beside it and a rename: a crash leaves the old file or the
    new one, never half of one. An ``OSError`` names ``path`` (the temporary file is an implementation detail)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except OSError as err:  # name the file asked for, not the temporary one
        tmp.unlink(missing_ok=True)
        raise type(err)(err.errno, err.strerror, str(path)) from err
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
