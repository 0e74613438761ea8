"""The run-config schema: :class:`UnlearnConfig` and :class:`FinetuneConfig`, one pydantic v2 model each, parsed once
at the entry (``parse_unlearn`` / ``parse_finetune``) and completely validated there, before anything is loaded or
written.

The defaults (``DEFAULTS`` of each model) are merged under the user's mapping inside the model
(:meth:`RunConfig.parse`), and ``compat`` is applied there too (:func:`baldro.training.compat.build_loss`: the loss
components and what ``released`` implies for the data); the result is ``raw``, the mapping ``config.yaml`` records and
``--resume`` compares (unchanged from before the schema, so run folders read the same). The components' parameters come from the
components themselves (:meth:`baldro.core.registry.Registry.specs`: a union discriminated on ``name``); the
``training`` section from the declared types of ``transformers.TrainingArguments``, with the ranges of the counts
and rates added here. Every error is one :class:`~baldro.errors.ConfigError` line naming the key path, the value and
what it must be (nearest names for an unknown key). ``baldro config schema`` writes the JSON Schema of both models.
"""

from __future__ import annotations

import copy
import difflib
import os
import typing
from typing import Annotated, Any, ClassVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    WrapValidator,
)
from pydantic.fields import FieldInfo

from baldro.aggregators import AGGREGATORS
from baldro.core.padmask import PAD_MASKINGS
from baldro.core.params import Choice, Flag, Nullable, Number, Text
from baldro.core.registry import Registry
from baldro.errors import ConfigError
from baldro.modeling.loading import DTYPES
from baldro.objectives import OBJECTIVES
from baldro.retain import RETAIN_TERMS
from baldro.training import compat as compat_rules
from baldro.training.arguments import training_section

REGISTRIES = {"objective": OBJECTIVES, "aggregator": AGGREGATORS, "retain": RETAIN_TERMS,
              "retain_aggregator": AGGREGATORS}
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
                                 "token: mask every token equal to the pad id (open-unlearning's collator)")) = None


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
    target_modules: Nullable(Text() | list[Text()]) = Field(None, description="default: all projections")
    merge: Flag(help="also save the adapters merged into the weights (merged/)") = False
    bias: Choice("none", "all", "lora_only", help="PEFT's bias mode") = "none"


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


_BUILT_AT: dict[type, int] = {}  # Registry.generation each config model's component unions were built at


def _fspaths(value: Any) -> Any:
    """``value`` with every ``os.PathLike`` (at any depth) as its string."""
    if isinstance(value, dict):
        return {k: _fspaths(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_fspaths(v) for v in value]
    return os.fspath(value) if isinstance(value, os.PathLike) else value


def _rebuild_components(cls: type[BaseModel]) -> None:
    """Re-evaluate the component fields' annotations (their unions now include components registered after the
    class was built, e.g. a user's aggregator) and rebuild the validator."""
    hints = typing.get_type_hints(cls, include_extras=True)
    for name in set(REGISTRIES) & set(cls.model_fields):
        old = cls.model_fields[name]
        cls.__pydantic_fields__[name] = FieldInfo.from_annotated_attribute(
            hints[name], Field(old.default, description=old.description))
    cls.model_rebuild(force=True)
    _BUILT_AT[cls] = Registry.generation


class RunConfig(BaseModel):
    """What every training run reads: the model, data, LoRA and ``training`` sections and the run-folder flags."""

    model_config = ConfigDict(extra="forbid")
    DEFAULTS: ClassVar[dict[str, Any]] = {}
    _raw: dict[str, Any] = PrivateAttr(default_factory=dict)

    name: Any = Field(None, description="a label for the run")
    description: Any = Field(None, description="free text, recorded")
    model: ModelSection = Field(description="the model to train: {path, tokenizer, dtype, ...}")
    lora: Nullable(LoraSection) = Field(None, description="train LoRA adapters instead of every weight")
    training: Nullable(training_section()) = Field({}, description="any transformers.TrainingArguments field")
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
        """The defaults merged under ``config``."""
        if not isinstance(config, dict):
            raise ConfigError(f"a run config must be a mapping, got {type(config).__name__}")
        merged = _fspaths(deep_merge(cls.DEFAULTS, config))  # Path objects from the Python API: config.yaml text
        if not str(merged.get("output_dir") or "").strip():
            raise ConfigError("the config needs output_dir: the folder the run writes (set it with --set output_dir=...)")
        if "aggregator" in cls.DEFAULTS and merged.get("aggregator") is None:
            merged["aggregator"] = copy.deepcopy(cls.DEFAULTS["aggregator"])  # null: the plain mean, as before
        if merged.get("lora") == {}:
            merged["lora"] = None  # no adapters, as the loader reads it
        return merged

    @classmethod
    def parse(cls, config: Any) -> Any:
        """The validated config (ConfigError naming the key path on the first error); nothing is loaded."""
        from baldro.modeling.loading import check_model_source

        raw = cls.resolve(config)
        if _BUILT_AT.get(cls, Registry.generation) != Registry.generation:  # a component registered since
            _rebuild_components(cls)
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
    retain_aggregator: Nullable(component("retain_aggregator")) = Field(None, description="over retain samples")
    forget_weight: Number(ge=0, help="γ, the forget term's weight") = 1.0
    dro_scope: Choice("micro", "global", help="aggregate per micro-batch or per optimizer step") = "micro"
    log_every: Nullable(Number(integer=True, gt=0, help="log the DRO statistics every n steps")) = 1
    chunk_tokens: Number(integer=True, gt=0, help="tokens per chunk of the lean LM head") = 1024
    compat: Choice(*compat_rules.COMPAT_MODES, help="the paper's or the released code's definitions") = "paper"
    eval_every: Any = Field(None, description="unlearning curves: evaluate every n steps (the caller reads it)")
    eval_max_items: Any = Field(None, description="unlearning curves: items per split")
    eval: Any = Field(None, description="unlearning curves: {retain_logs, source, forget_split, ...}")

    def check(self) -> None:
        """Build the loss under ``compat`` (ConfigError for a pairing it refuses) and check what spans sections."""
        self._loss, self._options = compat_rules.build_loss(self._raw)  # released: may set data.pad_masking
        self.data.pad_masking = self._raw["data"].get("pad_masking")
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


def _section_at(model: Any, path: list[Any], raw: Any) -> Any:
    """The model class of the mapping at ``path`` (None where it is no model)."""
    for key in path:
        if key in REGISTRIES and isinstance(raw, dict) and isinstance(raw.get(key), dict):
            return REGISTRIES[key].spec(raw[key].get("name")) if path == [key] else None
        tp = getattr(model, "model_fields", {}).get(key)
        model = next((a for a in (tp.annotation, *typing.get_args(tp.annotation))
                      if isinstance(a, type) and issubclass(a, BaseModel)), None) if tp else None
        raw = raw.get(key) if isinstance(raw, dict) else None
    return model


def explain(model: type[BaseModel], err: ValidationError, raw: dict[str, Any], prefix: tuple[str, ...] = ()) -> str:
    """The first validation error as one line: key path, value, what it must be, and a fix (``prefix``: the key
    path of the validated section in ``model``)."""
    first = err.errors(include_url=False)[0]
    kind, value, msg, loc = first["type"], first.get("input"), first["msg"], [*prefix, *first["loc"]]
    loc = [k for k in loc if not (isinstance(k, str) and "[" in k)]  # pydantic's validator / union branch labels
    if loc[0] in REGISTRIES and len(loc) > 1 and kind not in ("union_tag_invalid", "union_tag_not_found"):
        del loc[1]  # the discriminator's tag
    path, where = ".".join(map(str, loc)), _section_at(model, loc[:-1], raw)
    fields = getattr(where, "model_fields", {})
    info = fields.get(loc[-1])
    if path == "training.output_dir":
        return "set the run folder with the top-level key output_dir, not training.output_dir"
    if kind == "extra_forbidden" and loc[0] in REGISTRIES and len(loc) == 2:
        params = ", ".join(k for k in fields if k not in ("name", "weight")) or "none"
        return (f"unknown key {path}: {REGISTRIES[loc[0]].kind} {raw[loc[0]]['name']!r} has no parameter "
                f"{loc[-1]!r}; allowed parameters: {params}")
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(str(loc[-1]), list(fields), n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}?" if close else f"valid keys: {', '.join(sorted(fields))}"
        return f"unknown key {path} in the config; {hint}"
    if kind == "union_tag_invalid":
        try:
            REGISTRIES[loc[0]].get(str(first["ctx"]["tag"]))
        except ValueError as known:
            return f"{path}.name: {known}"
    mapping = kind in ("model_attributes_type", "dict_type", "model_type")
    if kind == "union_tag_not_found" or (mapping and path in REGISTRIES):
        return f"config key {path!r} must be a mapping with a 'name', e.g. {path}: {{name: ...}}"
    if kind == "missing" or (value is None and info is not None and info.is_required()):
        return f"the config needs {path}" + (f": {info.description}" if info and info.description else "")
    if mapping:
        return f"config key {path!r} must be a mapping, got {value!r}"
    msg = msg.removeprefix("Value error, ")
    if msg.startswith("set either"):
        return msg
    return f"{path}={value!r} {msg}" + (f" ({info.description})" if kind == "choice" and info.description else "")


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


_BUILT_AT.update({UnlearnConfig: Registry.generation, FinetuneConfig: Registry.generation})
