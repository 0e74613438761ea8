"""A tiny name → component registry shared by objectives, aggregators and retain terms.

Components are dataclasses; ``build(name, **params)`` checks the name and the parameter names and lets the
component's ``__post_init__`` check the values.
"""

from __future__ import annotations

import dataclasses
import difflib
import numbers
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps config names to component classes (dataclasses)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._classes: dict[str, type[T]] = {}

    def register(self, name: str) -> Callable[[type[T]], type[T]]:
        def decorator(cls: type[T]) -> type[T]:
            self._classes[name] = cls
            return cls

        return decorator

    def names(self) -> list[str]:
        return sorted(self._classes)

    def get(self, name: str) -> type[T]:
        if name not in self._classes:
            close = difflib.get_close_matches(name, self._classes, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"unknown {self.kind} {name!r}{hint}; known: {', '.join(self.names())}")
        return self._classes[name]

    def build(self, name: str, **params: Any) -> T:
        cls = self.get(name)
        allowed = [f.name for f in dataclasses.fields(cls) if f.init]  # type: ignore[arg-type]
        types = {f.name: f.type for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        for key, value in params.items():
            if key not in allowed:
                allowed_text = ", ".join(allowed) if allowed else "none"
                raise ValueError(f"{self.kind} {name!r} has no parameter {key!r}; allowed parameters: {allowed_text}")
            check_type(key, value, types[key])
        return cls(**params)


def check_type(name: str, value: object, annotation: object) -> None:
    """Reject a parameter of the wrong kind (e.g. the string "2" for a float) with a ``ValueError`` naming it."""
    kind = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    if kind in ("float", "int"):
        number = numbers.Real if kind == "float" else numbers.Integral
        ok = isinstance(value, number) and not isinstance(value, bool)
        require(ok, name, value, f"a number ({kind})")
    elif kind == "str":
        require(isinstance(value, str), name, value, "a string")


def require(condition: bool, name: str, value: object, allowed: str) -> None:
    """Raise ``ValueError`` naming the parameter, its value and the allowed range unless ``condition`` holds."""
    if not condition:
        raise ValueError(f"invalid {name}={value!r}: must be {allowed}")


def import_modules(package: str, path: list[str]) -> list[str]:
    """Import every module of a component package (``baldro.aggregators``, …) so that each file registers itself:
    a new component is one file, with no import line to add. Returns the module names, sorted."""
    import importlib
    import pkgutil

    names = sorted(m.name for m in pkgutil.iter_modules(path) if not m.name.startswith("_"))
    for name in names:
        importlib.import_module(f"{package}.{name}")
    return names
