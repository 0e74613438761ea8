"""Run configs as written: YAML files and ``--set key=value`` overrides, read into a nested dict (checked by
:mod:`baldro.training.schema`)."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml

from baldro.errors import ConfigError


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
