"""``run_unlearn(config) -> Path``: the unlearning run behind ``baldro unlearn``.

Config sections: ``model`` {path, tokenizer, dtype}, ``data`` {source, kind (qa: TOFU-style splits | text: MUSE
``raw/<split>`` cut into max_length-token chunks), forget_split, retain_split, format, max_length, idk_seed,
pad_masking (position | token: open-unlearning's collator mask, :mod:`baldro.core.padmask`; default position)}, ``objective`` / ``aggregator`` / ``retain`` ({name, ...params}; ``retain.weight`` = λ, ``retain:
null`` for none), ``retain_aggregator``, ``forget_weight`` γ, ``dro_scope`` micro|global, ``log_every``, ``lora``,
``training`` (any ``TrainingArguments`` field), ``output_dir``, ``overwrite``, ``resume``, ``compat`` (paper |
released: the released BalDRO code's definitions, :mod:`baldro.training.compat`); ``eval_every``,
``eval_max_items``, ``eval`` {retain_logs, source, forget_split, ...}: unlearning curves, evaluated by a callback
the caller passes in (``baldro unlearn`` does; see :mod:`baldro.evaluation.trajectory`).

The mapping is parsed once (:func:`parse_unlearn`) into an :class:`~baldro.training.run_config.UnlearnConfig`;
``run_unlearn`` accepts either and the trainer is built from the typed fields.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from baldro import aggregators, objectives, retain
from baldro.core.padmask import DEFAULT_PAD_MASKING
from baldro.data.from_config import qa_dataset, text_dataset
from baldro.errors import ConfigError
from baldro.modeling.loading import load_model
from baldro.training.checks import check_unlearn_values
from baldro.training.compat import data_defaults, loss_spec
from baldro.training.config import DRO_SCOPES, apply_warmup_epochs, component, section
from baldro.training.device import fit_pin_memory
from baldro.training.pipeline import COMMON_KEYS, TrainingRun, check_model_folder, resolve, run_with
from baldro.training.run_config import RunConfig, UnlearnConfig

# Unlearning curves: read by the caller, which builds the evaluation callback (baldro.evaluation.trajectory) and
# passes it in ``callbacks``; training only accepts and records these keys.
CURVE_KEYS = ("eval_every", "eval_max_items", "eval")
UNLEARN_KEYS = (
    *COMMON_KEYS,
    "objective",
    "aggregator",
    "retain",
    "retain_aggregator",
    "forget_weight",
    "dro_scope",
    "log_every",
    "chunk_tokens",
    "compat",
    *CURVE_KEYS,
)
UNLEARN_DATA_KEYS = ("source", "kind", "forget_split", "retain_split", "format", "max_length", "idk_seed", "pad_masking")
UNLEARN_DEFAULTS: dict[str, Any] = {
    "model": {"dtype": "float32"},
    "data": {"kind": "qa", "forget_split": "forget10", "retain_split": "retain90", "max_length": 512, "idk_seed": 0},
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


def loss_parts(cfg: dict[str, Any]) -> tuple[Any, Any, Any, Any, dict[str, str]]:
    """(objective, aggregator, retain term, retain aggregator, UnlearnLoss options) under ``cfg["compat"]``;
    ConfigError for a bad name, parameter or pairing (e.g. ``rank_by: loss`` with satimp)."""
    from baldro.composition import UnlearnLoss

    spec = loss_spec(cfg)
    parts = {
        "objective": component({"objective": spec.objective}, "objective", objectives.build),
        "aggregator": component({"aggregator": spec.aggregator}, "aggregator", aggregators.build, "mean"),
        "retain": component({"retain": spec.retain}, "retain", retain.build),
        "retain_aggregator": component({"retain_aggregator": spec.retain_aggregator}, "retain_aggregator", aggregators.build),
    }
    try:
        loss = UnlearnLoss(**parts, **spec.options)  # type: ignore[arg-type]
    except ValueError as err:
        raise ConfigError(f"config keys objective/aggregator: {err}") from err
    return loss.objective, loss.aggregator, loss.retain, loss.retain_aggregator, spec.options


def check_unlearn(cfg: dict[str, Any]) -> tuple[Any, Any, Any, Any, dict[str, str]]:
    """Check every value and build the loss components (once: they are returned, as :func:`loss_parts` gives them),
    so that a bad name, type or parameter fails before the run starts."""
    check_unlearn_values(cfg)
    if cfg["dro_scope"] not in DRO_SCOPES:
        raise ConfigError(f"dro_scope {cfg['dro_scope']!r} must be one of {', '.join(DRO_SCOPES)}")
    parts = loss_parts(cfg)
    objective = parts[0]
    kind = section(cfg, "data").get("kind")
    if kind not in ("qa", "text"):
        raise ConfigError(f"data.kind {kind!r} must be 'qa' (TOFU-style splits) or 'text' (MUSE raw/<split> text)")
    if kind == "text" and objective.needs_idk:
        raise ConfigError(f"objective {cfg['objective']['name']!r} needs refusal answers: use data.kind: qa")
    if cfg["dro_scope"] == "global" and cfg.get("retain_aggregator"):
        raise ConfigError("dro_scope: global does not support retain_aggregator; use dro_scope: micro")
    return parts


def parse_unlearn(config: dict[str, Any]) -> UnlearnConfig:
    """The typed, completely validated config of an unlearning run (raises ConfigError); nothing is loaded."""
    cfg = resolve(config, UNLEARN_DEFAULTS, UNLEARN_KEYS, UNLEARN_DATA_KEYS)
    objective, aggregator, retain_term, retain_aggregator, options = check_unlearn(cfg)
    data_defaults(cfg)  # compat: released → data.pad_masking: token unless set
    check_model_folder(cfg)
    return UnlearnConfig(
        **RunConfig.common(cfg),
        objective=objective,
        aggregator=aggregator,
        retain=retain_term,
        retain_aggregator=retain_aggregator,
        loss_options=dict(options),
        forget_weight=float(cfg["forget_weight"]),
        retain_weight=float(section(cfg, "retain").get("weight", 1.0)) if retain_term is not None else 0.0,
        dro_scope=cfg["dro_scope"],
        log_every=cfg["log_every"],
        chunk_tokens=int(cfg["chunk_tokens"]),
    )


def build_unlearn_trainer(run: TrainingRun) -> Any:
    from baldro.data.collate import UnlearnCollator
    from baldro.data.refusals import idk_rows
    from baldro.data.tofu import load_tofu_split
    from baldro.training.trainer import UnlearnTrainer

    config: UnlearnConfig = run.config  # type: ignore[assignment]
    data, retain_term = config.data, config.retain
    idk = None
    if data["kind"] == "text":
        forget = text_dataset(data, data["forget_split"], run.tokenizer, run.model)
        retain_set = text_dataset(data, data["retain_split"], run.tokenizer, run.model) if retain_term is not None else None
    else:
        forget_rows = load_tofu_split(data.get("source") or "", data["forget_split"])
        forget = qa_dataset(data, data["forget_split"], run.tokenizer, "forget", forget_rows)
        retain_set = qa_dataset(data, data["retain_split"], run.tokenizer, "retain") if retain_term is not None else None
        run.record_format(forget)
    if config.objective.needs_idk:
        idk = qa_dataset(data, data["forget_split"], run.tokenizer, "idk", idk_rows(forget_rows, int(data["idk_seed"])))
    apply_warmup_epochs(run.args, config.training, len(forget))  # an epoch is one pass over the forget set
    fit_pin_memory(run.args)  # no pinning (and no DataLoader warning) without CUDA
    reference_model = None
    if retain_term is not None and retain_term.needs_reference_logits:
        reference_model = load_model(config.model)
    return UnlearnTrainer(
        data_collator=UnlearnCollator(run.tokenizer, pad_masking=data.get("pad_masking", DEFAULT_PAD_MASKING)),
        model=run.model,
        args=run.args,
        forget_dataset=forget,
        retain_dataset=retain_set,
        idk_dataset=idk,
        objective=config.objective,
        aggregator=config.aggregator,
        retain=retain_term,
        forget_weight=config.forget_weight,
        retain_weight=config.retain_weight,
        retain_aggregator=config.retain_aggregator,
        dro_scope=config.dro_scope,
        reference_model=reference_model,
        log_every=config.log_every,
        chunk_tokens=config.chunk_tokens,
        processing_class=run.tokenizer,
        **config.loss_options,
    )


def run_unlearn(config: dict[str, Any] | UnlearnConfig, callbacks: Sequence[Any] = ()) -> Path:
    """Run unlearning from a config mapping (parsed here) or an already parsed :class:`UnlearnConfig`; returns the
    finished run folder. ``callbacks``: extra ``TrainerCallback``s (e.g.
    :func:`baldro.evaluation.trajectory.trajectory_callback` for ``eval_every``)."""
    parsed = config if isinstance(config, UnlearnConfig) else parse_unlearn(config)
    return run_with(parsed, build_unlearn_trainer, command="unlearn", callbacks=callbacks)


def resolve_unlearn(config: dict[str, Any]) -> dict[str, Any]:
    """The config mapping with defaults filled in, validated without loading anything (raises ConfigError): the
    ``raw`` mapping of :func:`parse_unlearn`."""
    return parse_unlearn(config).raw
