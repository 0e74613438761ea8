"""What a run folder says about itself: ``config.yaml``, ``run_info.json`` and the demo's completion marker."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from baldro.errors import ConfigError

CONFIG_FILE = "config.yaml"
RUN_INFO = "run_info.json"
DONE = ".baldro_done"


def mark_done(folder: Path) -> None:
    (Path(folder) / DONE).write_text("")


def is_done(folder: Path) -> bool:
    return (Path(folder) / DONE).exists()


def read_run_info(folder: str | Path) -> dict[str, Any]:
    """``run_info.json`` of a folder as a dict (empty when absent); malformed JSON is a ConfigError naming it."""
    path = Path(folder) / RUN_INFO
    if not path.is_file():
        return {}
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not valid JSON ({err}); delete it or restore it") from err
    if not isinstance(info, dict):
        raise ConfigError(f"{path}: must be a JSON object")
    return info


def write_run_info(folder: str | Path, **fields: Any) -> Path:
    """Merge ``fields`` into ``run_info.json`` (atomically: temporary file, then rename)."""
    path = Path(folder) / RUN_INFO
    info = {**read_run_info(folder), **fields}
    tmp = path.with_name(f".{RUN_INFO}.tmp")
    tmp.write_text(json.dumps(info, indent=1, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path
