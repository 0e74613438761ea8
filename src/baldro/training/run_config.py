"""Typed run configs: a config mapping is parsed once, at the entry, into an :class:`UnlearnConfig` or a
:class:`FinetuneConfig` (as TRL's ``*Config`` classes hold a trainer's settings), completely validated there.

``parse_unlearn`` (:mod:`baldro.training.unlearn`) and ``parse_finetune`` (:mod:`baldro.training.finetune`) merge
the defaults under the user's mapping, check every key (nearest-name hints) and value, check the model folder, and
build the loss components once; the run folder, model loading and the trainer then read typed fields and never
re-check a dict. ``raw`` keeps the resolved mapping: it is what ``config.yaml`` records and what ``--resume``
compares. The ``training`` section stays a mapping of ``TrainingArguments`` fields (checked against their declared
types and ranges): ``TrainingArguments`` itself is built inside the run folder, whose path it needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from baldro.aggregators import Aggregator
from baldro.objectives import Objective
from baldro.retain import RetainTerm


@dataclass(frozen=True)
class RunConfig:
    """What every training run reads: the model, data, LoRA and ``training`` sections and the run-folder flags."""

    raw: dict[str, Any]
    model: dict[str, Any]
    data: dict[str, Any]
    training: dict[str, Any]
    lora: dict[str, Any] | None
    output_dir: str
    overwrite: bool
    resume: bool
    allow_config_change: bool

    @staticmethod
    def common(cfg: dict[str, Any]) -> dict[str, Any]:
        """The :class:`RunConfig` fields of a resolved, checked mapping (sections default to empty mappings)."""
        return {
            "raw": cfg,
            "model": dict(cfg.get("model") or {}),
            "data": dict(cfg.get("data") or {}),
            "training": dict(cfg.get("training") or {}),
            "lora": dict(cfg["lora"]) if cfg.get("lora") else None,
            "output_dir": str(cfg["output_dir"]),
            "overwrite": bool(cfg.get("overwrite")),
            "resume": bool(cfg.get("resume")),
            "allow_config_change": bool(cfg.get("allow_config_change")),
        }


@dataclass(frozen=True)
class FinetuneConfig(RunConfig):
    """A fine-tuning run (``baldro finetune``): :class:`RunConfig` alone."""


@dataclass(frozen=True)
class UnlearnConfig(RunConfig):
    """An unlearning run (``baldro unlearn``): the loss components, built once under ``compat``, and their weights.

    total = γ · aggregate_i ℓ_i + λ · retain (``forget_weight`` γ, ``retain_weight`` λ = ``retain.weight``, 0 without
    a retain term); ``loss_options`` are ``UnlearnLoss`` options set by ``compat: released``."""

    objective: Objective
    aggregator: Aggregator
    retain: RetainTerm | None
    retain_aggregator: Aggregator | None
    loss_options: dict[str, str]
    forget_weight: float
    retain_weight: float
    dro_scope: str
    log_every: int | None
    chunk_tokens: int
