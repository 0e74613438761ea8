"""Run configs: YAML files, ``--set key=value`` overrides, validation with nearest-name hints, and the mapping of
the ``training`` section onto :class:`transformers.TrainingArguments`.

A config is a nested dict. Every key is checked against the schema of its section; an unknown key is a
:class:`~baldro.errors.ConfigError` that lists the closest valid names. Every ``TrainingArguments`` field is
reachable as ``training.<field>`` (``output_dir`` is the top-level ``output_dir``); ``training.warmup_ratio`` also
works on transformers 5, which folded it into ``warmup_steps``; ``training.warmup_epochs`` is open-unlearning's
warm-up in epochs (:func:`apply_warmup_epochs`).
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import re
from pathlib import Path
from typing import Any

import yaml

from baldro.errors import ConfigError
from baldro.training.checks import FLOAT32_MAX

DRO_SCOPES = ("micro", "global")


class DuplicateKeyError(yaml.YAMLError):
    """A mapping in a YAML file names one key twice (PyYAML silently keeps the last one)."""

    def __init__(self, key: Any, line: int, first: int) -> None:
        super().__init__(f"line {line}: key {key!r} appears twice in one mapping (first on line {first})")


class _Loader(yaml.SafeLoader):
    """A safe loader with three differences from PyYAML's YAML 1.1 reading: ``1e-5`` is a float, as users mean it;
    only ``true`` / ``false`` are booleans (YAML 1.2: ``no``, ``off``, ``yes``, ``on`` stay strings, so that
    ``save_strategy: no`` is the string TrainingArguments expects); a key given twice in one mapping is an error,
    not a silent overwrite."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key == "<<":
                continue
            if not isinstance(key, str | int | float | bool):
                continue  # an unhashable key: PyYAML's own constructor reports it
            line = key_node.start_mark.line + 1
            if key in seen:
                raise DuplicateKeyError(key, line, seen[key])
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


BOOL_TAG = "tag:yaml.org,2002:bool"
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != BOOL_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def parse_value(text: str) -> Any:
    """A ``--set`` value: YAML scalar/list/dict syntax (``1e-5`` → float, ``[q_proj, v_proj]`` → list, ``no`` →
    the string "no": only true / false are booleans)."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506  (a SafeLoader subclass)
    except DuplicateKeyError as err:
        raise ConfigError(f"--set value {text!r}: {err}") from err
    except yaml.YAMLError:
        return text


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file; a missing or unreadable file is a ConfigError."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist; pass an existing YAML file to --config")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506
    except DuplicateKeyError as err:
        raise ConfigError(f"config file {path}: {err}; keep one (merge the two sections)") from err
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ConfigError(f"config file {path} is not readable YAML ({first}); fix the syntax") from err
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of keys to values, got {type(data).__name__}")
    return data


def apply_overrides(config: dict[str, Any], overrides: list[str] | None) -> dict[str, Any]:
    """Apply ``key.sub=value`` overrides (dotted keys create nested mappings as needed); returns a new dict."""
    config = copy.deepcopy(config)
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"--set {item!r} must look like key=value, e.g. --set training.learning_rate=1e-5")
        key, text = item.split("=", 1)
        parts = [p for p in key.strip().split(".") if p]
        if not parts:
            raise ConfigError(f"--set {item!r} has an empty key")
        node = config
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                raise ConfigError(f"--set {item!r}: {'.'.join(parts[: i + 1])} is a value, not a section")
            node = child
        node[parts[-1]] = parse_value(text)
    return config


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """``update`` over ``base``, merging nested mappings. A ``None`` section in ``update`` replaces, and so does a
    component mapping whose ``name`` differs (``{name: ga}`` over ``{name: npo, beta: 0.1}`` is just ``{name: ga}``)."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        old = out.get(key)
        renamed = isinstance(old, dict) and isinstance(value, dict) and value.get("name", old.get("name")) != old.get("name")
        if isinstance(value, dict) and isinstance(old, dict) and not renamed:
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def check_keys(section: dict[str, Any], allowed: list[str] | tuple[str, ...], where: str) -> None:
    """ConfigError naming the first unknown key of ``section`` and the nearest allowed names."""
    for key in section:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=3, cutoff=0.5)
            hint = f"did you mean {', '.join(close)}?" if close else f"valid keys: {', '.join(sorted(allowed))}"
            raise ConfigError(f"unknown key {where}{key!r} in the config; {hint}")


# ``training`` keys that are no ``TrainingArguments`` field: set on the arguments once the data is loaded.
EXTRA_TRAINING_KEYS = ("warmup_epochs",)


def training_argument_names() -> list[str]:
    """``TrainingArguments`` fields, plus ``warmup_ratio`` on transformers 5 (see :func:`compat_training_kwargs`) and
    :data:`EXTRA_TRAINING_KEYS`."""
    from transformers import TrainingArguments

    names = [f.name for f in dataclasses.fields(TrainingArguments) if f.init]
    names = names if "warmup_ratio" in names else [*names, "warmup_ratio"]
    return [*names, *EXTRA_TRAINING_KEYS]


def check_warmup_epochs(section: dict[str, Any]) -> None:
    """``training.warmup_epochs``, when set: a number ≥ 0, and no other warm-up key beside it."""
    value = section.get("warmup_epochs")
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < float("inf"):
        raise ConfigError(f"training.warmup_epochs={value!r} must be a number ≥ 0 (epochs of linear warm-up)")
    others = [k for k in ("warmup_steps", "warmup_ratio") if section.get(k)]
    if others:
        raise ConfigError(f"set either training.warmup_epochs or training.{others[0]}, not both")


def apply_warmup_epochs(args: Any, section: dict[str, Any], rows: int) -> None:
    """Set ``args.warmup_steps`` from ``training.warmup_epochs`` as open-unlearning does
    (``src/trainer/__init__.py::load_trainer_args``): ⌊epochs · rows / (batch · accumulation · devices)⌋, ``rows``
    the rows of an epoch (the forget set when unlearning). Devices: the number of processes here; open-unlearning
    counts ``torch.cuda.device_count()`` (the same on one process per visible GPU, 0 on a CPU, where it fails)."""
    epochs = section.get("warmup_epochs")
    if epochs is None:
        return
    per_step = args.per_device_train_batch_size * args.gradient_accumulation_steps * max(1, args.world_size)
    args.warmup_steps = int((epochs * rows) // per_step)


def compat_training_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """transformers 5 dropped ``warmup_ratio`` (a ``warmup_steps`` below 1 is a ratio there); map it over."""
    from transformers import TrainingArguments

    fields = {f.name for f in dataclasses.fields(TrainingArguments)}
    if "warmup_ratio" in kwargs and "warmup_ratio" not in fields:
        kwargs = dict(kwargs)
        ratio = kwargs.pop("warmup_ratio")
        if ratio and kwargs.get("warmup_steps"):
            raise ConfigError("set either training.warmup_ratio or training.warmup_steps, not both")
        if ratio:
            if not 0 <= float(ratio) < 1:
                raise ConfigError(f"training.warmup_ratio={ratio} must be in [0, 1)")
            kwargs["warmup_steps"] = float(ratio)
    return kwargs


def training_arguments(section: dict[str, Any], output_dir: str | Path, **forced: Any) -> Any:
    """``TrainingArguments`` from the ``training`` section (keys checked, nearest names on error).

    Defaults differing from HF: ``report_to="none"`` unless given. ``forced`` values (e.g.
    ``remove_unused_columns=False``) always win.
    """
    from transformers import TrainingArguments

    names = [n for n in training_argument_names() if n != "output_dir"]
    if "output_dir" in section:
        raise ConfigError("set the run folder with the top-level key output_dir, not training.output_dir")
    check_keys(section, names, "training.")
    check_warmup_epochs(section)
    fields = {k: v for k, v in section.items() if k not in EXTRA_TRAINING_KEYS}
    kwargs = compat_training_kwargs({"report_to": "none", **fields, **forced, "output_dir": str(output_dir)})
    try:
        return TrainingArguments(**kwargs)
    except (TypeError, ValueError) as err:
        message = " ".join(str(err).split())
        raise ConfigError(f"invalid training arguments: {message}") from err


def section(config: dict[str, Any], key: str) -> dict[str, Any]:
    """The mapping under ``key`` (an empty dict when absent); a non-mapping is a ConfigError."""
    value = config.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"config key {key!r} must be a mapping, got {value!r}")
    return value


def finite_in_float32(key: str, value: Any) -> None:
    """ConfigError for a number that is NaN, infinite or beyond float32's range (the losses are computed in float32
    or lower: such a value turns them into NaN at the first step)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return
    if not math.isfinite(value):
        raise ConfigError(f"{key}={value!r} must be a finite number")
    if abs(value) > FLOAT32_MAX:
        raise ConfigError(f"{key}={value!r} is beyond float32's range (±3.4e38), which the loss is computed in")


def component(config: dict[str, Any], key: str, registry_build: Any, default: str | None = None) -> Any:
    """Build an objective/aggregator/retain term from ``{name: ..., **params}``; registry errors → ConfigError."""
    spec = config.get(key)
    if spec is None:
        if default is None:
            return None
        spec = {"name": default}
    if isinstance(spec, str):
        spec = {"name": spec}
    if not isinstance(spec, dict) or "name" not in spec:
        raise ConfigError(f"config key {key!r} must be a mapping with a 'name', e.g. {key}: {{name: ...}}")
    params = {k: v for k, v in spec.items() if k not in ("name", "weight")}
    for param, value in params.items():
        finite_in_float32(f"{key}.{param}", value)
    try:
        return registry_build(spec["name"], **params)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"config key {key!r}: {err}") from err
