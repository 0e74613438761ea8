"""Typed parameters: a component's or a config section's field declares its type, range and one-line help once, as
an annotation (``beta: Number(gt=0, help="...") = 0.1``), and pydantic v2 validates it from there.

Choice: the components stay plain ``dataclasses`` and are validated with ``pydantic.TypeAdapter`` /
``create_model`` over their fields (:mod:`baldro.core.registry`), not turned into pydantic dataclasses: a user's
component (the README's ``MeanMax``) is an ordinary ``@dataclass`` and works unchanged, its plain ``eps: float``
validated like ours; constructing a component in Python costs nothing; and the same annotations give the JSON Schema.
The validators below keep the messages of the hand-written checks they replace: ``True`` is no number, ``"2"`` is no
number (no lax coercion), NaN / ±inf / beyond float32 (the losses' precision) are refused.
"""

from __future__ import annotations

import math
import numbers
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, WrapValidator
from pydantic_core import PydanticCustomError

FLOAT32_MAX = 3.4028234663852886e38


def _fail(kind: str, text: str) -> PydanticCustomError:
    return PydanticCustomError(kind, text)  # the text is what the value must be: the error line's end


def check_number(value: Any, integer: bool = False, gt: float | None = None, ge: float | None = None,
                 lt: float | None = None, le: float | None = None, off: float | None = None) -> Any:
    """``value`` if it is a finite number within float32 in the given bounds (``off``: one more allowed value,
    e.g. -1 for "not set"), else a ``PydanticCustomError`` whose text is what it must be."""
    if integer and not (isinstance(value, numbers.Integral) and not isinstance(value, bool)):
        raise _fail("integer", "must be an integer")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _fail("number", "must be a number")
    if not math.isfinite(value):
        raise _fail("finite", "must be a finite number")
    if abs(value) > FLOAT32_MAX:
        raise _fail("float32", "is beyond float32's range (±3.4e38), which the loss is computed in")
    if off is not None and value == off:
        return int(value) if integer else value
    if gt is not None and le is not None and not gt < value <= le:
        raise _fail("range", f"must be in ({gt:g}, {le:g}]")
    for bound, bad, sign in ((gt, lambda b: value <= b, ">"), (ge, lambda b: value < b, "≥"),
                             (lt, lambda b: value >= b, "<"), (le, lambda b: value > b, "≤")):
        if bound is not None and bad(bound):
            extra = f" (or {off:g})" if off is not None else ""
            raise _fail("range", f"must be {sign} {bound if isinstance(bound, int) else f'{bound:g}'}{extra}")
    return int(value) if integer else float(value)


def Number(*, gt: float | None = None, ge: float | None = None, lt: float | None = None, le: float | None = None,
           integer: bool = False, off: float | None = None, help: str = "") -> Any:  # noqa: A002, N802
    """A finite (integer) number in the bounds: the annotation of a numeric parameter."""

    def check(value: Any) -> Any:
        return check_number(value, integer, gt, ge, lt, le, off)

    bounds = {} if off is not None else {"gt": gt, "ge": ge, "lt": lt, "le": le}
    return Annotated[int if integer else float, Field(description=help or None, **bounds), BeforeValidator(check)]


def _typed(tp: Any, ok: Any, wants: str, help: str) -> Any:  # noqa: A002
    def check(value: Any) -> Any:
        if not ok(value):
            raise _fail("choice" if "one of" in wants else "type", f"must be {wants}")
        return value

    return Annotated[tp, BeforeValidator(check), Field(description=help or None)]


def Choice(*values: str, help: str = "") -> Any:  # noqa: A002, N802
    """One of the strings ``values``: the annotation of a string option (a non-string: "must be a string")."""
    member = _typed(Literal[values], lambda v: v in values, f"one of {', '.join(values)}", help)
    return Annotated[member, Text().__metadata__[0]]  # before-validators run last first: the type check first


def Flag(help: str = "") -> Any:  # noqa: A002, N802
    """``true`` or ``false`` (no ``yes`` / ``1``)."""
    return _typed(bool, lambda v: isinstance(v, bool), "true or false", help)


def Text(help: str = "") -> Any:  # noqa: A002, N802
    """A string (no number or list in its place)."""
    return _typed(str, lambda v: isinstance(v, str), "a string", help)


def _none_or(value: Any, handler: Any) -> Any:
    return None if value is None else handler(value)


def _add_null(schema: dict[str, Any]) -> None:
    inner = {k: schema.pop(k) for k in list(schema) if k not in ("default", "description", "title")}
    schema["anyOf"] = [inner, {"type": "null"}]


def Nullable(tp: Any) -> Any:  # noqa: N802
    """``tp`` or ``null``."""
    return Annotated[tp, WrapValidator(_none_or), Field(json_schema_extra=_add_null)]
