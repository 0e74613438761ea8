"""A run config's ``training`` section: its schema, taken from the declared types of ``transformers.TrainingArguments``
(plain types checked strictly, unions as one message, the ranges of counts, rates and seeds added here), the
``TrainingArguments`` built from it, and open-unlearning's warm-up in epochs."""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from functools import cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, WrapValidator, create_model, model_validator

from baldro.core.params import Choice, Flag, Nullable, Number, Text
from baldro.errors import ConfigError

POSITIVE = ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps",
            "num_train_epochs", "logging_steps", "save_steps", "eval_steps", "save_total_limit")
NON_NEGATIVE = ("learning_rate", "weight_decay", "warmup_steps", "warmup_ratio", "max_grad_norm", "seed",
                "data_seed", "dataloader_num_workers", "adam_epsilon", "label_smoothing_factor")
PLAIN_WORDS = {"dict_type": "a mapping", "list_type": "a list", "bool_type": "true or false"}  # pydantic's words
SEEDS = ("seed", "data_seed")  # numpy.random.seed takes 0 ≤ seed < 2**32


def _one_of(null_at: int | None) -> Any:
    """A union's errors as one: "must be a string or null or true or false" (``null_at``: where null stands)."""

    def check(value: Any, handler: Any) -> Any:
        try:
            return handler(value)
        except ValidationError as err:
            wants = [PLAIN_WORDS.get(e["type"], e["msg"].removeprefix("must be ")) for e in err.errors()]
            if null_at is not None:
                wants.insert(null_at, "null")
            raise ValueError("must be " + " or ".join(dict.fromkeys(wants))) from None

    return WrapValidator(check)


def _loose(tp: Any, name: str) -> Any:
    """A pydantic type for ``TrainingArguments.<name>``'s declared ``tp``: plain types checked strictly (ranges from
    the lists above), unions one message, enums by value, anything more complex taken as given."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if not (
            isinstance(a, type) and issubclass(a, enum.Enum) and str in typing.get_args(tp))]
        null_at = args.index(type(None)) if type(None) in args else None
        members = tuple(_loose(a, name) for a in args)
        return Annotated[typing.Union[members], _one_of(null_at)]  # noqa: UP007
    if tp is type(None):
        return None
    if tp is bool:
        return Flag()
    if tp in (int, float):
        bounds = {"gt": 0} if name in POSITIVE else {"ge": 0} if name in NON_NEGATIVE else {}
        if name in SEEDS:
            bounds["lt"] = 2**32
        if name == "max_steps":
            bounds = {"gt": 0, "off": -1}
        return Number(integer=tp is int, **bounds)
    if tp is str:
        return Text()
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return Choice(*(m.value for m in tp))
    if tp in (list, dict) or typing.get_origin(tp) in (list, dict):
        return list[Any] if list in (tp, typing.get_origin(tp)) else dict[str, Any]
    return Any


def _default(f: dataclasses.Field[Any]) -> Any:
    value = f.default.value if isinstance(f.default, enum.Enum) else f.default
    return value if isinstance(value, str | int | float | bool | type(None)) else None


@cache
def training_section() -> type[BaseModel]:
    """The ``training`` section: every ``TrainingArguments`` field (``warmup_ratio`` too on transformers 5, which
    folded it into ``warmup_steps``) and ``warmup_epochs`` (open-unlearning's warm-up in epochs)."""
    from transformers import TrainingArguments

    hints = typing.get_type_hints(TrainingArguments)
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(TrainingArguments):
        if f.init and f.name != "output_dir":
            tp = hints.get(f.name, Any) | bool if f.metadata.get("const") is True else hints.get(f.name, Any)
            help_text = " ".join(str(f.metadata.get("help", "")).split())[:200] or None
            fields[f.name] = (_loose(tp, f.name), Field(_default(f), description=help_text))
    fields.setdefault("warmup_ratio", (Nullable(Number(ge=0, lt=1)), Field(None, description="warm-up share")))
    fields["warmup_epochs"] = (Nullable(Number(ge=0, help="epochs of linear warm-up (open-unlearning's)")), None)
    return create_model("TrainingSection", __config__=ConfigDict(extra="forbid", title="training"),
                        __validators__={"one_warmup": model_validator(mode="after")(_one_warmup)}, **fields)


def _one_warmup(section: Any) -> Any:
    if section.warmup_epochs is not None:
        other = next((k for k in ("warmup_steps", "warmup_ratio") if getattr(section, k, None)), None)
        if other:
            raise ValueError(f"set either training.warmup_epochs or training.{other}, not both")
    return section




def training_arguments(section: dict[str, Any] | None, output_dir: str | Path, **forced: Any) -> Any:
    """``TrainingArguments`` from the ``training`` section (checked as in a run config: key path and nearest names on
    error). Defaults differing from HF: ``report_to="none"`` unless given. ``forced`` values (e.g.
    ``remove_unused_columns=False``) always win. transformers 5 dropped ``warmup_ratio`` (a ``warmup_steps`` below 1
    is a ratio there): it is mapped over."""
    from transformers import TrainingArguments

    from baldro.training.schema import UnlearnConfig, explain

    section = dict(section or {})
    try:
        training_section().model_validate(section)
    except ValidationError as err:
        raise ConfigError(explain(UnlearnConfig, err, {"training": section}, ("training",))) from None
    kwargs = {"report_to": "none", **section, **forced, "output_dir": str(output_dir)}
    kwargs.pop("warmup_epochs", None)  # set once the rows are known: apply_warmup_epochs
    if "warmup_ratio" in kwargs and "warmup_ratio" not in {f.name for f in dataclasses.fields(TrainingArguments)}:
        ratio = kwargs.pop("warmup_ratio")
        if ratio and kwargs.get("warmup_steps"):
            raise ConfigError("set either training.warmup_ratio or training.warmup_steps, not both")
        if ratio:
            kwargs["warmup_steps"] = float(ratio)
    try:
        return TrainingArguments(**kwargs)
    except (TypeError, ValueError) as err:
        message = " ".join(str(err).split())
        raise ConfigError(f"invalid training arguments: {message}") from err


def apply_warmup_epochs(args: Any, section: dict[str, Any] | None, rows: int) -> None:
    """Set ``args.warmup_steps`` from ``training.warmup_epochs`` as open-unlearning does
    (``src/trainer/__init__.py::load_trainer_args``): ⌊epochs · rows / (batch · accumulation · devices)⌋, ``rows``
    the rows of an epoch (the forget set when unlearning). Devices: the number of processes here; open-unlearning
    counts ``torch.cuda.device_count()`` (the same on one process per visible GPU, 0 on a CPU, where it fails)."""
    epochs = (section or {}).get("warmup_epochs")
    if epochs is None:
        return
    per_step = args.per_device_train_batch_size * args.gradient_accumulation_steps * max(1, args.world_size)
    args.warmup_steps = int((epochs * rows) // per_step)
