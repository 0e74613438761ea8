"""The run-config schema: :class:`UnlearnConfig` and :class:`FinetuneConfig`, one pydantic v2 model each, parsed once
at the entry (``parse_unlearn`` / ``parse_finetune``) and completely validated there, before anything is loaded or
written.

The defaults (``DEFAULTS`` of each model) are merged under the user's mapping inside the model, and so is what
``compat: released`` implies for the data; the result is ``raw``, the mapping ``config.yaml`` records and ``--resume``
compares (unchanged from before the schema, so run folders read the same). The components' parameters come from the
components themselves (:meth:`baldro.core.registry.Registry.specs`: a union discriminated on ``name``); the
``training`` section from the declared types of ``transformers.TrainingArguments``, with the ranges of the counts
and rates added here. Every error is one :class:`~baldro.errors.ConfigError` line naming the key path, the value and
what it must be (nearest names for an unknown key). ``baldro config schema`` writes the JSON Schema of both models.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import enum
import os
import types
import typing
from functools import cache
from typing import Annotated, Any, ClassVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    WrapValidator,
    create_model,
    model_validator,
)

from baldro.aggregators import AGGREGATORS
from baldro.core.padmask import PAD_MASKINGS
from baldro.core.params import Choice, Flag, Number, Text
from baldro.errors import ConfigError
from baldro.modeling.loading import DTYPES
from baldro.objectives import OBJECTIVES
from baldro.retain import RETAIN_TERMS

REGISTRIES = {"objective": OBJECTIVES, "aggregator": AGGREGATORS, "retain": RETAIN_TERMS,
              "retain_aggregator": AGGREGATORS}
POSITIVE = ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps",
            "num_train_epochs", "logging_steps", "save_steps", "eval_steps", "save_total_limit")
NON_NEGATIVE = ("learning_rate", "weight_decay", "warmup_steps", "warmup_ratio", "max_grad_norm", "seed",
                "data_seed", "dataloader_num_workers", "adam_epsilon", "label_smoothing_factor")
SEEDS = ("seed", "data_seed")  # numpy.random.seed takes 0 ≤ seed < 2**32


def _none_or(value: Any, handler: Any) -> Any:
    return None if value is None else handler(value)


def _add_null(schema: dict[str, Any]) -> None:
    inner = {k: schema.pop(k) for k in list(schema) if k not in ("default", "description", "title")}
    schema["anyOf"] = [inner, {"type": "null"}]


def Nullable(tp: Any) -> Any:  # noqa: N802
    """``tp`` or ``null``."""
    return Annotated[tp, WrapValidator(_none_or), Field(json_schema_extra=_add_null)]


def _one_of(null_at: int | None) -> Any:
    """A union's errors as one: "must be a string or null or true or false" (``null_at``: where null stands)."""

    def check(value: Any, handler: Any) -> Any:
        try:
            return handler(value)
        except ValidationError as err:
            wants = [e["msg"].removeprefix("must be ") for e in err.errors()]
            if null_at is not None:
                wants.insert(null_at, "null")
            raise ValueError("must be " + " or ".join(dict.fromkeys(wants))) from None

    return WrapValidator(check)


def _spec_string(value: Any, handler: Any) -> Any:
    return handler({"name": value} if isinstance(value, str) else value)  # ``objective: npo`` = ``{name: npo}``


def component(key: str, **extra: Any) -> Any:
    """The field of a loss component: ``{name, **params}`` of any registered one."""
    return Annotated[REGISTRIES[key].specs(**extra), WrapValidator(_spec_string)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelSection(Section):
    path: Annotated[Text(help="a folder with a Hugging Face causal LM (or a hub id)"), WrapValidator(
        lambda v, h: h(os.fspath(v) if isinstance(v, os.PathLike) else v))]
    tokenizer: Nullable(Text(help="tokenizer folder or hub id (default: model.path)")) = None
    dtype: Choice(*DTYPES, help="the weights' dtype when loaded") = "float32"
    attn_implementation: Nullable(Text(help="transformers' attn_implementation")) = None
    trust_remote_code: Flag(help="run the model repository's own code") = False


class DataCommon(Section):
    source: Nullable(Text(help="folder of the dataset (TOFU-style JSON / MUSE raw)")) = None
    kind: Choice("qa", "text", help="qa: TOFU-style splits; text: MUSE raw/<split> text") = "qa"
    format: Any = Field(None, description="prompt format name or mapping (docs/prompt-formats.md)")
    max_length: Number(integer=True, gt=0, help="tokens per example / chunk") = 512
    pad_masking: Nullable(Choice(*PAD_MASKINGS, help="position: mask padding positions only (baldro's default); "
                                 "token: mask every pad-id token (open-unlearning's collator)")) = None


class UnlearnData(DataCommon):
    forget_split: Text(help="split to forget") = "forget10"
    retain_split: Text(help="split to retain") = "retain90"
    idk_seed: Number(integer=True, ge=0, help="seed of the refusal answers' assignment") = 0


class FinetuneData(DataCommon):
    split: Text() | list[Text()] = Field("full", description="split (or list of splits) to train on")


class LoraSection(Section):
    r: Number(integer=True, gt=0, help="adapter rank") = 8
    alpha: Number(gt=0, help="LoRA alpha") = 16
    dropout: Number(ge=0, lt=1, help="LoRA dropout") = 0.0
    target_modules: Nullable(Text() | list[Text()]) = Field(None, description="module names (default: every "
                                                                              "projection of a Llama block)")
    merge: Flag(help="also save the adapters merged into the weights (merged/)") = False
    bias: Choice("none", "all", "lora_only", help="PEFT's bias mode") = "none"


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


class RunConfig(BaseModel):
    """What every training run reads: the model, data, LoRA and ``training`` sections and the run-folder flags."""

    model_config = ConfigDict(extra="forbid")
    DEFAULTS: ClassVar[dict[str, Any]] = {}
    _raw: dict[str, Any] = PrivateAttr(default_factory=dict)

    name: Any = Field(None, description="a label for the run")
    description: Any = Field(None, description="free text, recorded")
    model: ModelSection = Field(description="the model to train: {path, tokenizer, dtype, ...}")
    lora: Nullable(LoraSection) = Field(None, description="train LoRA adapters instead of every weight")
    training: Nullable(training_section()) = Field({}, description="any transformers.TrainingArguments field (output_dir "
                                         "is the top-level key)")
    output_dir: Annotated[Text(help="the folder the run writes (set it with --set output_dir=...)"), WrapValidator(
        lambda v, h: h(os.fspath(v) if isinstance(v, os.PathLike) else v))]
    overwrite: Flag(help="replace a finished run folder") = False
    resume: Flag(help="continue from the last checkpoint") = False
    allow_config_change: Flag(help="let --resume accept a changed config (recorded)") = False

    @property
    def raw(self) -> dict[str, Any]:
        """The resolved mapping (defaults merged): what ``config.yaml`` records and ``--resume`` compares."""
        return self._raw

    @classmethod
    def resolve(cls, config: Any) -> dict[str, Any]:
        """The defaults merged under ``config`` (and, for unlearning, what ``compat`` implies for the data)."""
        if not isinstance(config, dict):
            raise ConfigError(f"a run config must be a mapping, got {type(config).__name__}")
        return deep_merge(cls.DEFAULTS, config)

    @classmethod
    def parse(cls, config: Any) -> Any:
        """The validated config (ConfigError naming the key path on the first error); nothing is loaded."""
        from baldro.modeling.loading import check_model_source

        raw = cls.resolve(config)
        try:
            parsed = cls.model_validate(raw)
        except ValidationError as err:
            raise ConfigError(explain(cls, err, raw)) from None
        parsed._raw = raw
        parsed.check()
        check_model_source(raw["model"], training=True, lora=bool(raw.get("lora")))
        return parsed

    def check(self) -> None:
        """Rules across sections (none here)."""


class FinetuneConfig(RunConfig):
    """A fine-tuning run (``baldro finetune``): the token-mean NLL on ``data.split``."""

    DEFAULTS: ClassVar[dict[str, Any]] = {
        "model": {"dtype": "float32"},
        "data": {"split": "full", "kind": "qa", "max_length": 512},
        "lora": None,
        "training": {},
        "overwrite": False,
        "resume": False,
    }
    data: FinetuneData = Field(FinetuneData(), description="the splits to train on")


class UnlearnConfig(RunConfig):
    """An unlearning run (``baldro unlearn``): total = γ · aggregate_i ℓ_i + λ · retain (``forget_weight`` γ,
    ``retain.weight`` λ); the components are built once, under ``compat`` (:attr:`loss`)."""

    DEFAULTS: ClassVar[dict[str, Any]] = {
        "model": {"dtype": "float32"},
        "data": {"kind": "qa", "forget_split": "forget10", "retain_split": "retain90", "max_length": 512,
                 "idk_seed": 0},
        "objective": {"name": "npo", "beta": 0.1},
        "aggregator": {"name": "mean"},
        "retain": {"name": "nll", "weight": 1.0},
        "retain_aggregator": None,
        "forget_weight": 1.0,
        "dro_scope": "micro",
        "log_every": 1,
        "chunk_tokens": 1024,
        "compat": "paper",
        "lora": None,
        "training": {},
        "overwrite": False,
        "resume": False,
    }
    _loss: Any = PrivateAttr(None)
    _options: dict[str, str] = PrivateAttr(default_factory=dict)

    data: UnlearnData = Field(UnlearnData(), description="the forget and retain splits")
    objective: component("objective") = Field(DEFAULTS["objective"], description="the per-sample forget loss ℓ_i")
    aggregator: component("aggregator") = Field(DEFAULTS["aggregator"], description="reduces ℓ over the batch")
    retain: Nullable(component("retain", weight=(Number(ge=0, help="λ"), 1.0))) = Field(
        DEFAULTS["retain"], description="the retain term and its weight λ (null: none)")
    retain_aggregator: Nullable(component("retain_aggregator")) = Field(None, description="aggregates the retain "
                                                                                          "term's per-sample values")
    forget_weight: Number(ge=0, help="γ, the forget term's weight") = 1.0
    dro_scope: Choice("micro", "global", help="micro: aggregate per micro-batch; global: over the accumulated "
                      "batch") = "micro"
    log_every: Nullable(Number(integer=True, gt=0, help="log the DRO statistics every n steps")) = 1
    chunk_tokens: Number(integer=True, gt=0, help="tokens per chunk of the lean LM head") = 1024
    compat: Choice("paper", "released", help="paper: the paper's definitions; released: the released BalDRO "
                   "code's (docs/compat.md)") = "paper"
    eval_every: Any = Field(None, description="unlearning curves: evaluate every n steps (the caller reads it)")
    eval_max_items: Any = Field(None, description="unlearning curves: items per split")
    eval: Any = Field(None, description="unlearning curves: {retain_logs, source, forget_split, ...}")

    @classmethod
    def resolve(cls, config: Any) -> dict[str, Any]:
        from baldro.training.compat import data_defaults

        raw = super().resolve(config)
        data_defaults(raw)  # compat: released → data.pad_masking: token unless set (recorded in config.yaml)
        return raw

    def check(self) -> None:
        """Build the loss under ``compat`` (ConfigError for a pairing it refuses) and check what spans sections."""
        self._loss, self._options = build_loss(self._raw)
        if self.data.kind == "text" and self._loss.objective.needs_idk:
            raise ConfigError(f"objective {self._raw['objective']['name']!r} needs refusal answers: use data.kind: qa")
        if self.dro_scope == "global" and self.retain_aggregator is not None:
            raise ConfigError("dro_scope: global does not support retain_aggregator; use dro_scope: micro")

    @property
    def loss(self) -> Any:
        """The :class:`~baldro.composition.UnlearnLoss` built from the config (its components the trainer's)."""
        return self._loss

    @property
    def loss_options(self) -> dict[str, str]:
        """``UnlearnLoss`` options set by ``compat: released``."""
        return self._options

    @property
    def retain_weight(self) -> float:
        """λ: ``retain.weight``, 0 without a retain term."""
        return 0.0 if self.retain is None else float(self.retain.weight)


def build_loss(raw: dict[str, Any]) -> tuple[Any, dict[str, str]]:
    """(``UnlearnLoss``, its options) of a resolved unlearn mapping under its ``compat`` mode; ConfigError for a
    bad pairing (e.g. ``rank_by: loss`` with satimp)."""
    from baldro.composition import UnlearnLoss
    from baldro.training.compat import loss_spec

    spec = loss_spec(raw)
    parts = {key: None if value is None else REGISTRIES[key].build(**value) for key, value in (
        ("objective", spec.objective), ("aggregator", spec.aggregator),
        ("retain", {k: v for k, v in (spec.retain or {}).items() if k != "weight"} or None),
        ("retain_aggregator", spec.retain_aggregator))}
    try:
        return UnlearnLoss(**parts, **spec.options), spec.options  # type: ignore[arg-type]
    except ValueError as err:
        raise ConfigError(f"config keys objective/aggregator: {err}") from err


def _section_at(model: Any, path: tuple[Any, ...], raw: Any) -> Any:
    """The model class of the mapping at ``path`` (None where it is no model)."""
    for key in path:
        fields = getattr(model, "model_fields", {})
        if key in REGISTRIES and isinstance(raw, dict) and isinstance(raw.get(key), dict):
            try:
                model = REGISTRIES[key].spec(raw[key].get("name"))
            except ValueError:
                return None
        elif key in fields:
            tp = fields[key].annotation
            tp = next((a for a in (tp, *typing.get_args(tp)) if isinstance(a, type) and issubclass(a, BaseModel)), None)
            model = tp
        else:
            return None
        raw = raw.get(key) if isinstance(raw, dict) else None
    return model


def explain(model: type[BaseModel], err: ValidationError, raw: dict[str, Any], prefix: tuple[str, ...] = ()) -> str:
    """The first validation error as one line: key path, value, what it must be, and a fix (``prefix``: the key
    path of the validated section in ``model``)."""
    first = err.errors(include_url=False)[0]
    loc = [*prefix, *first["loc"]]
    if loc and loc[0] in REGISTRIES and len(loc) > 1 and first["type"] not in ("union_tag_invalid",
                                                                                "union_tag_not_found"):
        del loc[1]  # the discriminator's tag
    path = ".".join(str(p) for p in loc)
    where = _section_at(model, tuple(loc[:-1]), raw)
    info = getattr(where, "model_fields", {}).get(loc[-1]) if loc else None
    help_text = f" ({info.description})" if info is not None and info.description else ""
    kind, value, msg = first["type"], first.get("input"), first["msg"]
    if kind == "extra_forbidden":
        if path == "training.output_dir":
            return "set the run folder with the top-level key output_dir, not training.output_dir"
        allowed = list(getattr(where, "model_fields", {}))
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}?" if close else f"valid keys: {', '.join(sorted(allowed))}"
        if loc[0] in REGISTRIES and len(loc) == 2:
            name = raw[loc[0]]["name"]
            params = [k for k in allowed if k not in ("name", "weight")]
            return (f"unknown key {path}: {REGISTRIES[loc[0]].kind} {name!r} has no parameter {loc[-1]!r}; allowed "
                    f"parameters: {', '.join(params) or 'none'}")
        return f"unknown key {path} in the config; {hint}"
    if kind == "union_tag_invalid":
        try:
            REGISTRIES[loc[0]].get(str(first["ctx"]["tag"]))
        except ValueError as known:
            return f"{path}.name: {known}"
    if kind == "union_tag_not_found" or (kind in ("model_attributes_type", "dict_type", "model_type")
                                         and path in REGISTRIES):
        return f"config key {path!r} must be a mapping with a 'name', e.g. {path}: {{name: ...}}"
    if kind == "missing" or (value is None and info is not None and info.is_required()):
        return f"the config needs {path}: {info.description}" if info is not None else f"the config needs {path}"
    if kind in ("model_attributes_type", "dict_type", "model_type"):
        return f"config key {path!r} must be a mapping, got {value!r}"
    msg = msg.removeprefix("Value error, ")
    if msg.startswith("set either"):
        return msg
    if kind == "choice":
        msg += help_text
    return f"{path}={value!r} {msg}"


def schema() -> dict[str, Any]:
    """The JSON Schema of a run config: ``oneOf`` an unlearning and a fine-tuning config."""
    defs: dict[str, Any] = {}
    out: dict[str, Any] = {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "baldro run config"}
    for model in (UnlearnConfig, FinetuneConfig):
        one = model.model_json_schema(ref_template="#/$defs/{model}")
        defs.update(one.pop("$defs", {}))
        defs[model.__name__] = one
    out["anyOf"] = [{"$ref": "#/$defs/UnlearnConfig"}, {"$ref": "#/$defs/FinetuneConfig"}]
    out["$defs"] = dict(sorted(defs.items()))
    return out

