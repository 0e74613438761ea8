"""What ``--resume`` compares: the new config against the ``config.yaml`` the run started with.

Keys that cannot change the trained model or its logs are ignored (where and how often the run logs or saves, the
run flags themselves); any other difference is refused unless ``allow_config_change`` is set, and an accepted
difference is recorded in ``run_info.json`` (``config_changes``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from baldro.errors import ConfigError

RUN_FLAGS = ("overwrite", "resume", "allow_config_change", "output_dir", "name", "description")
NO_EFFECT_TRAINING = (
    "logging_steps", "logging_strategy", "logging_first_step", "logging_dir", "report_to", "disable_tqdm",
    "save_steps", "save_strategy", "save_total_limit", "save_only_model", "save_safetensors", "run_name",
    "dataloader_num_workers", "dataloader_pin_memory", "dataloader_persistent_workers", "push_to_hub",
    "hub_model_id", "hub_strategy", "hub_token", "hub_private_repo", "log_level", "log_level_replica",
)


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}`` (an empty mapping stays one key)."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def _ignored(key: str) -> bool:
    if key in RUN_FLAGS:
        return True
    return key.startswith("training.") and key.split(".", 2)[1] in NO_EFFECT_TRAINING


def config_changes(saved: dict[str, Any], new: dict[str, Any]) -> dict[str, list[Any]]:
    """``{dotted key: [saved value, new value]}`` for every result-changing difference (absent → None)."""
    a, b = flatten(saved), flatten(new)
    return {k: [a.get(k), b.get(k)] for k in sorted(set(a) | set(b)) if not _ignored(k) and a.get(k) != b.get(k)}


def check_resume_config(folder: Path, new: dict[str, Any], allow: bool) -> dict[str, list[Any]]:
    """Compare ``new`` with ``folder/config.yaml``; ConfigError listing the differing keys unless ``allow``."""
    path = folder / "config.yaml"
    if not path.is_file():
        return {}
    saved = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    changes = config_changes(saved, new)
    if changes and not allow:
        listed = ", ".join(f"{k}: {old!r} → {now!r}" for k, (old, now) in changes.items())
        raise ConfigError(f"--resume: the config differs from the one {folder.name} started with ({listed}); resume "
                          "with the same config, or pass --allow-config-change to accept (recorded in run_info.json)")
    return changes
