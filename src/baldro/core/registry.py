"""A tiny name → component registry shared by objectives, aggregators and retain terms.

Components are dataclasses whose fields declare their parameters once (type, default, range, help:
:mod:`baldro.core.params`). :meth:`Registry.spec` turns a component's fields into a pydantic model of its config
mapping ``{name: <its name>, **params}``; :meth:`Registry.specs` is the union of all of them, discriminated on ``name``
(what the run-config schema uses, so a new component is in the schema once registered); ``build(name, **params)``
validates through the same model.
"""

from __future__ import annotations

import dataclasses
import difflib
import sys
import typing
from collections.abc import Callable
from functools import cache
from typing import Annotated, Any, ClassVar, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from baldro.core.params import Flag, Number, Text

T = TypeVar("T")
PLAIN = {float: Number(), int: Number(integer=True), str: Text(), bool: Flag()}  # a plain annotation, checked strictly


class Registry(Generic[T]):
    """Maps config names to component classes (dataclasses)."""

    generation: ClassVar[int] = 0  # registrations so far, over every registry

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._classes: dict[str, type[T]] = {}

    def register(self, name: str) -> Callable[[type[T]], type[T]]:
        def decorator(cls: type[T]) -> type[T]:
            self._classes[name] = cls
            Registry.generation += 1  # config models built before this registration rebuild their unions
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

    def spec(self, name: str, **extra: Any) -> type[BaseModel]:
        """The pydantic model of ``{name: ..., **params}`` for component ``name`` (``extra``: more fields, e.g. a
        retain term's ``weight``)."""
        return _spec_model(self.get(name), name, tuple(extra.items()))

    def specs(self, **extra: Any) -> Any:
        """The union of every registered component's :meth:`spec`, discriminated on ``name``."""
        models = tuple(self.spec(name, **extra) for name in self.names())
        return Annotated[typing.Union[models], Field(discriminator="name")]  # noqa: UP007

    def build(self, name: str, **params: Any) -> T:
        spec = self.spec(name)
        try:
            checked = spec(name=name, **params)
        except ValidationError as err:
            first = err.errors(include_url=False)[0]
            key, allowed = first["loc"][0], ", ".join(k for k in spec.model_fields if k != "name") or "none"
            if first["type"] == "extra_forbidden":
                raise ValueError(f"{self.kind} {name!r} has no parameter {key!r}; allowed parameters: {allowed}") from None
            raise ValueError(f"invalid {key}={first['input']!r}: {first['msg']}") from None
        return self.get(name)(**{key: getattr(checked, key) for key in params})


@cache
def _spec_model(cls: type, name: str, extra: tuple[tuple[str, Any], ...]) -> type[BaseModel]:
    hints = typing.get_type_hints(cls, include_extras=True)
    fields: dict[str, Any] = {"name": (Literal[name], ...)}
    for f in dataclasses.fields(cls):
        if f.init:
            default = f.default if f.default is not dataclasses.MISSING else ...
            fields[f.name] = (PLAIN.get(hints[f.name], hints[f.name]), default)
    module = sys.modules.get(cls.__module__)
    doc = " ".join(((module.__doc__ if module else None) or "").strip().split("\n\n")[0].split())
    config = ConfigDict(extra="forbid", title=name, json_schema_extra={"description": doc} if doc else None)
    return create_model(f"{cls.__name__}Spec", __config__=config, **fields, **dict(extra))


def import_modules(package: str, path: list[str]) -> list[str]:
    """Import every module of a component package (``baldro.aggregators``, …) so that each file registers itself:
    a new component is one file, with no import line to add. Returns the module names, sorted."""
    import importlib
    import pkgutil

    names = sorted(m.name for m in pkgutil.iter_modules(path) if not m.name.startswith("_"))
    for name in names:
        importlib.import_module(f"{package}.{name}")
    return names
