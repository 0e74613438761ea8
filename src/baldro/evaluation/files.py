"""Result files: ``<BENCH>_EVAL.json`` (per-item values) and ``<BENCH>_SUMMARY.json`` (metric → value).

Written like open-unlearning writes them (``json.dump(..., indent=4)``), atomically (a temporary file in the same
folder, then ``os.replace``). A non-empty output folder is refused unless ``overwrite`` is set: the field's evaluator
silently reuses metrics already present in its output file, which mixes stale and fresh numbers.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from baldro.errors import ConfigError, DataError


def eval_file(out_dir: str | Path, benchmark: str) -> Path:
    """``DIR/TOFU_EVAL.json`` or ``DIR/MUSE_EVAL.json``."""
    return Path(out_dir) / f"{benchmark.upper()}_EVAL.json"


def summary_file(out_dir: str | Path, benchmark: str) -> Path:
    """``DIR/TOFU_SUMMARY.json`` or ``DIR/MUSE_SUMMARY.json``."""
    return Path(out_dir) / f"{benchmark.upper()}_SUMMARY.json"


def prepare_out_dir(out_dir: str | Path, overwrite: bool = False) -> Path:
    """Create ``out_dir``; refuse one that already holds files unless ``overwrite``."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ConfigError(
            f"--out {out}: folder is not empty; choose a new folder or pass --overwrite to replace its results"
        )
    out.mkdir(parents=True, exist_ok=True)
    return out


def _plain(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def finite_json(value: Any) -> Any:
    """``value`` with every NaN or infinite number replaced by ``None`` (JSON null: bare ``NaN`` is not JSON, and
    most readers refuse it); numpy scalars and arrays become plain numbers and lists."""
    if isinstance(value, np.ndarray | np.generic):
        value = value.tolist()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite_json(v) for v in value]
    return value


def write_json(path: str | Path, data: Any) -> Path:
    """Write ``data`` as indented JSON atomically (temp file + rename); numpy values become plain numbers, NaN and
    infinities null (:func:`finite_json`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(finite_json(data), f, indent=4, default=_plain, allow_nan=False)
            f.write("\n")
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the file normal permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_eval_json(path: str | Path, what: str = "eval file", hint: str = "") -> dict[str, Any]:
    """A ``*_EVAL.json`` as a dict; a missing or malformed file raises :class:`DataError` naming ``what`` it is."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: {what} not found{hint}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: {what} is not valid JSON ({err}); expected a *_EVAL.json file") from err
    if not isinstance(data, dict):
        raise DataError(f"{path}: {what} must be a JSON object mapping metric names to results")
    return data
