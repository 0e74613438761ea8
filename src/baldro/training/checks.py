"""Type and range checks of every config value, run before any folder is touched or model loaded.

``training.<field>`` values are checked against the type ``TrainingArguments`` declares for the field
(``typing.get_type_hints`` over ``dataclasses.fields``; a field whose command-line flag alone means ``True`` also
takes ``true``, as ``TrainingArguments`` does: ``training.fsdp: true``), then counts must be > 0, rates and weights ≥ 0 and finite.
Each failure is one :class:`~baldro.errors.ConfigError` line naming the key, the value and what it must be.
"""

from __future__ import annotations

import enum
import math
import os
import types
import typing
from functools import cache
from pathlib import Path
from typing import Any

from baldro.errors import ConfigError

# training.<field>: (lowest allowed value, whether the lowest value itself is allowed). -1 for max_steps means "off".
POSITIVE = ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps",
            "num_train_epochs", "logging_steps", "save_steps", "eval_steps", "save_total_limit")
NON_NEGATIVE = ("learning_rate", "weight_decay", "warmup_steps", "warmup_ratio", "max_grad_norm", "seed",
                "data_seed", "dataloader_num_workers", "adam_epsilon", "label_smoothing_factor")
SEEDS = ("seed", "data_seed")  # numpy.random.seed takes 0 ≤ seed < 2**32
FLOAT32_MAX = 3.4028234663852886e38


@cache
def _training_hints() -> dict[str, Any]:
    import dataclasses

    from transformers import TrainingArguments

    hints = typing.get_type_hints(TrainingArguments)
    out = {f.name: hints.get(f.name, Any) for f in dataclasses.fields(TrainingArguments) if f.init}
    for f in dataclasses.fields(TrainingArguments):
        if f.init and f.metadata.get("const") is True:  # a bare flag (``--fsdp``) means True, and HF takes True too
            out[f.name] = out[f.name] | bool
    out.setdefault("warmup_ratio", float)
    return out


def accepts(tp: Any, value: Any) -> bool | None:
    """Whether ``value`` fits the annotation ``tp`` (None: the annotation is too complex to tell)."""
    if tp is Any:
        return True
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        answers = [accepts(arg, value) for arg in typing.get_args(tp)]
        return True if any(a is True for a in answers) else (None if any(a is None for a in answers) else False)
    if tp is type(None):
        return value is None
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return isinstance(value, tp) or value in {m.value for m in tp}
    if origin in (list, tuple) or tp in (list, tuple):
        return isinstance(value, list | tuple)
    if origin is dict or tp is dict:
        return isinstance(value, dict)
    return None


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return "one of " + ", ".join(str(m.value) for m in tp)
    names = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
    return names.get(tp, getattr(tp, "__name__", str(tp)))


def number(key: str, value: Any, *, integer: bool = False, minimum: float | None = None, strict: bool = False,
           allow_none: bool = False) -> None:
    """ConfigError unless ``value`` is a finite number (an integer if ``integer``) ≥ ``minimum`` (> if ``strict``)."""
    if value is None and allow_none:
        return
    kind = "an integer" if integer else "a number"
    ok = isinstance(value, int) and not isinstance(value, bool) if integer else (
        isinstance(value, int | float) and not isinstance(value, bool))
    if not ok:
        raise ConfigError(f"{key}={value!r} must be {kind}{' or null' if allow_none else ''}")
    if not math.isfinite(value):
        raise ConfigError(f"{key}={value!r} must be finite")
    if abs(value) > FLOAT32_MAX:
        raise ConfigError(f"{key}={value!r} is beyond float32's range (±3.4e38)")
    if minimum is not None and (value <= minimum if strict else value < minimum):
        raise ConfigError(f"{key}={value!r} must be {'>' if strict else '≥'} {minimum:g}")


def check_training(section: dict[str, Any]) -> None:
    """Each ``training.<field>`` against its declared type, then its range (keys are checked elsewhere)."""
    hints = _training_hints()
    for key, value in section.items():
        if key not in hints:
            continue
        if accepts(hints[key], value) is False:
            raise ConfigError(f"training.{key}={value!r} must be {_type_name(hints[key])} "
                              f"(the type of TrainingArguments.{key})")
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if not math.isfinite(value):
            raise ConfigError(f"training.{key}={value!r} must be finite")
        if abs(value) > FLOAT32_MAX:
            raise ConfigError(f"training.{key}={value!r} is beyond float32's range (±3.4e38)")
        if key in SEEDS and value >= 2**32:
            raise ConfigError(f"training.{key}={value!r} must be < 2**32 = {2**32} (numpy's seed range)")
        if key in POSITIVE and value <= 0:
            raise ConfigError(f"training.{key}={value!r} must be > 0")
        if key in NON_NEGATIVE and value < 0:
            raise ConfigError(f"training.{key}={value!r} must be ≥ 0")
        if key == "max_steps" and value != -1 and value <= 0:
            raise ConfigError(f"training.max_steps={value!r} must be > 0 (or -1: use num_train_epochs)")


def check_max_length(data: dict[str, Any]) -> None:
    number("data.max_length", data.get("max_length"), integer=True, minimum=0, strict=True)


def check_data_pad_masking(data: dict[str, Any]) -> None:
    """``data.pad_masking``, when set: position | token (:mod:`baldro.core.padmask`)."""
    if "pad_masking" in data:
        from baldro.core.padmask import check_pad_masking

        check_pad_masking(data["pad_masking"], "data.pad_masking")


def check_unlearn_values(cfg: dict[str, Any]) -> None:
    """γ (``forget_weight``), λ (``retain.weight``), counts and seeds of an unlearning config."""
    number("forget_weight", cfg.get("forget_weight"), minimum=0)
    retain = cfg.get("retain")
    if isinstance(retain, dict) and "weight" in retain:
        number("retain.weight", retain["weight"], minimum=0)
    data = cfg.get("data") or {}
    check_max_length(data)
    number("data.idk_seed", data.get("idk_seed"), integer=True, minimum=0)
    check_data_pad_masking(data)
    number("log_every", cfg.get("log_every"), integer=True, minimum=0, strict=True, allow_none=True)
    number("chunk_tokens", cfg.get("chunk_tokens"), integer=True, minimum=0, strict=True)


def check_model(model: dict[str, Any]) -> None:
    """``model.path`` given (a local path must be a model folder), ``model.dtype`` known, before anything loads."""
    from baldro.modeling.loading import DTYPES

    path = model.get("path")
    path = os.fspath(path) if isinstance(path, os.PathLike) else path
    if not path or not isinstance(path, str):
        raise ConfigError("the config needs model.path: a folder with a Hugging Face causal LM (or a hub id)")
    local = Path(path).expanduser()
    if (path.startswith((".", "/", "~")) or local.exists()) and not (local / "config.json").is_file():
        raise ConfigError(f"model.path {path} is not a model folder (no config.json there); check the path")
    if model.get("dtype", "float32") not in DTYPES:
        raise ConfigError(f"model.dtype {model.get('dtype')!r} is not one of {', '.join(DTYPES)}")


def check_lora(lora: Any) -> None:
    """``lora: {r > 0, alpha > 0, 0 ≤ dropout < 1, target_modules, merge, bias}`` (or null)."""
    if lora is None:
        return
    if not isinstance(lora, dict):
        raise ConfigError(f"lora must be a mapping or null, got {lora!r}")
    from baldro.training.config import check_keys
    from baldro.training.lora import LORA_KEYS

    check_keys(lora, LORA_KEYS, "lora.")
    number("lora.r", lora.get("r", 8), integer=True, minimum=0, strict=True)
    number("lora.alpha", lora.get("alpha", 16), minimum=0, strict=True)
    number("lora.dropout", lora.get("dropout", 0.0), minimum=0)
    if lora.get("dropout", 0.0) >= 1:
        raise ConfigError(f"lora.dropout={lora['dropout']!r} must be < 1")
    if not isinstance(lora.get("merge", False), bool):
        raise ConfigError(f"lora.merge={lora['merge']!r} must be true or false")
    targets = lora.get("target_modules")
    if targets is not None and not (isinstance(targets, str) or (
            isinstance(targets, list) and all(isinstance(t, str) for t in targets))):
        raise ConfigError(f"lora.target_modules={targets!r} must be a list of module names")


def check_common(cfg: dict[str, Any]) -> None:
    """What every run config shares: the model, LoRA, the run flags."""
    check_model(cfg.get("model") or {})
    check_lora(cfg.get("lora"))
    for flag in ("overwrite", "resume", "allow_config_change"):
        if not isinstance(cfg.get(flag, False), bool):
            raise ConfigError(f"{flag}={cfg[flag]!r} must be true or false")
    if not isinstance(cfg.get("output_dir"), str | os.PathLike):
        raise ConfigError(f"output_dir={cfg.get('output_dir')!r} must be a folder path")
