"""``run_unlearn(config) -> Path``: the unlearning run behind ``baldro unlearn``.

The config (sections and keys: docs/config.md) is parsed once (:func:`parse_unlearn`) into an
:class:`~baldro.training.schema.UnlearnConfig`; ``run_unlearn`` accepts either and builds the trainer from it.
Unlearning curves (``eval_every``, ``eval``) are evaluated by a callback the caller passes in (``baldro unlearn``
does; see :mod:`baldro.evaluation.trajectory`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from baldro.core.padmask import DEFAULT_PAD_MASKING
from baldro.data.from_config import qa_dataset, text_dataset
from baldro.modeling.loading import load_model
from baldro.training.arguments import apply_warmup_epochs
from baldro.training.device import fit_pin_memory
from baldro.training.pipeline import TrainingRun, run_with
from baldro.training.schema import UnlearnConfig


def parse_unlearn(config: dict[str, Any]) -> UnlearnConfig:
    """The typed, completely validated config of an unlearning run (raises ConfigError); nothing is loaded."""
    return UnlearnConfig.parse(config)


def build_unlearn_trainer(run: TrainingRun) -> Any:
    from baldro.data.collate import UnlearnCollator
    from baldro.data.refusals import idk_rows
    from baldro.data.tofu import load_tofu_split
    from baldro.training.trainer import UnlearnTrainer

    config: UnlearnConfig = run.config  # type: ignore[assignment]
    data, loss = config.raw["data"], config.loss
    retain_term = loss.retain
    idk = None
    if data["kind"] == "text":
        forget = text_dataset(data, data["forget_split"], run.tokenizer, run.model)
        retain_set = text_dataset(data, data["retain_split"], run.tokenizer, run.model) if retain_term is not None else None
    else:
        forget_rows = load_tofu_split(data.get("source") or "", data["forget_split"])
        forget = qa_dataset(data, data["forget_split"], run.tokenizer, "forget", forget_rows)
        retain_set = qa_dataset(data, data["retain_split"], run.tokenizer, "retain") if retain_term is not None else None
        run.record_format(forget)
    if loss.objective.needs_idk:
        idk = qa_dataset(data, data["forget_split"], run.tokenizer, "idk", idk_rows(forget_rows, int(data["idk_seed"])))
    apply_warmup_epochs(run.args, config.raw.get("training"), len(forget))  # an epoch is one pass over the forget set
    fit_pin_memory(run.args)  # no pinning (and no DataLoader warning) without CUDA
    reference_model = None
    if retain_term is not None and retain_term.needs_reference_logits:
        reference_model = load_model(config.raw["model"])
    return UnlearnTrainer(
        data_collator=UnlearnCollator(run.tokenizer, pad_masking=data.get("pad_masking", DEFAULT_PAD_MASKING)),
        model=run.model,
        args=run.args,
        forget_dataset=forget,
        retain_dataset=retain_set,
        idk_dataset=idk,
        objective=loss.objective,
        aggregator=loss.aggregator,
        retain=retain_term,
        forget_weight=config.forget_weight,
        retain_weight=config.retain_weight,
        retain_aggregator=loss.retain_aggregator,
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
