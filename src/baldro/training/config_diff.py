"""What ``--resume`` compares: the new config against the ``config.yaml`` the run started with, and the inputs'
fingerprints against those recorded in ``run_info.json`` (:mod:`baldro.runfolder.fingerprint`).

The configs are compared field by field as validated models (defaults filled in, ``beta: 2`` equal to ``beta:
2.0``); differences are reported as written. Keys that cannot change the trained model or its logs are ignored
(where and how often the run logs or saves, the run flags themselves); any other difference is refused unless
``allow_config_change`` is set, and an accepted difference is recorded in ``run_info.json`` (``config_changes``).
The same holds for the inputs — the files of ``data.source``, ``model.path`` (its top-level files),
``model.tokenizer`` and the unlearning curves' ``eval.source`` / ``eval.retain_logs`` — recorded as
``input_changes``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from baldro.errors import ConfigError
from baldro.runfolder.fingerprint import fingerprint, input_changes

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


def _fields(model: type[BaseModel], config: dict[str, Any]) -> dict[str, Any]:
    try:
        return flatten(model.model_validate(config).model_dump(warnings=False))
    except ValidationError:  # a config.yaml written by an older version: compared as written
        return flatten(config)


def config_changes(saved: dict[str, Any], new: dict[str, Any], model: Any = None) -> dict[str, list[Any]]:
    """``{dotted key: [saved value, new value]}`` (as written, absent → None) of every result-changing key whose
    validated field differs (``model``: the config class, default :class:`~baldro.training.schema.UnlearnConfig`)."""
    from baldro.training.schema import UnlearnConfig

    a, b = _fields(model or UnlearnConfig, saved), _fields(model or UnlearnConfig, new)
    raw_a, raw_b = flatten(saved), flatten(new)
    changes: dict[str, list[Any]] = {}
    for k in sorted(set(a) | set(b)):
        if _ignored(k) or a.get(k) == b.get(k):
            continue
        at_a, at_b = _written_at(k, raw_a), _written_at(k, raw_b)
        if at_a is None and at_b is None:  # a default on both sides, moved by a written key reported on its own
            continue
        key = max((p for p in (at_a, at_b) if p is not None), key=len)
        changes.setdefault(key, [raw_a.get(at_a) if at_a else None, raw_b.get(at_b) if at_b else None])
    return changes


def _written_at(key: str, flat: dict[str, Any]) -> str | None:
    """The deepest written key at or above dotted ``key`` (``objective`` for ``objective.name`` when the config says
    ``objective: npo``), None when neither it nor any prefix was written."""
    parts = key.split(".")
    return next((p for p in (".".join(parts[:i]) for i in range(len(parts), 0, -1)) if p in flat), None)


def check_resume_config(folder: Path, new: Any, allow: bool) -> dict[str, list[Any]]:
    """Compare the parsed config ``new`` with ``folder/config.yaml``; ConfigError listing the differing keys unless
    ``allow``."""
    path = folder / "config.yaml"
    if not path.is_file():
        return {}
    saved = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    changes = config_changes(saved, new.raw, type(new))
    if changes and not allow:
        listed = ", ".join(f"{k}: {old!r} → {now!r}" for k, (old, now) in changes.items())
        raise ConfigError(f"--resume: the config differs from the one {folder.name} started with ({listed}); resume "
                          "with the same config, or pass --allow-config-change to accept (recorded in run_info.json)")
    return changes


def _inputs(cfg: dict[str, Any]) -> dict[str, tuple[Any, bool]]:
    """``{input name: (source, whether its sub-folders count)}`` of a resolved config."""
    model = cfg.get("model") or {}
    data = cfg.get("data") or {}
    curve = cfg.get("eval") if isinstance(cfg.get("eval"), dict) else {}
    found = {
        "model.path": (model.get("path"), False),  # a model folder may hold a run's checkpoint-* sub-folders
        "model.tokenizer": (model.get("tokenizer"), False),
        "data.source": (data.get("source"), True),
        "eval.source": (curve.get("source"), True),
        "eval.retain_logs": (curve.get("retain_logs"), False),
    }
    return {name: spec for name, spec in found.items() if isinstance(spec[0], str | Path) and str(spec[0])}


def input_fingerprints(cfg: dict[str, Any]) -> dict[str, Any]:
    """``{input name: fingerprint}`` of every input of a resolved run config (what ``run_info.json`` records)."""
    return {name: fingerprint(source, recursive) for name, (source, recursive) in _inputs(cfg).items()}


def check_resume_inputs(saved: dict[str, Any] | None, now: dict[str, Any], allow: bool) -> dict[str, list[str]]:
    """Compare the inputs' fingerprints ``now`` with those the run recorded (``saved``; ``None`` for a run folder
    written before they were recorded: nothing to compare); ConfigError naming each changed input and file unless
    ``allow``. Returns the changes."""
    if saved is None:
        return {}
    changes = input_changes(saved, now)
    if changes and not allow:
        listed = "; ".join(f"{name}: {', '.join(what)}" for name, what in changes.items())
        raise ConfigError(f"--resume: inputs changed since the run started ({listed}); resume with the same files, "
                          "or pass --allow-config-change to accept (recorded in run_info.json)")
    return changes
