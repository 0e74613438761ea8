"""``run_finetune(config) -> Path``: supervised fine-tuning behind ``baldro finetune``.

``data.kind: qa`` trains on the answers of TOFU-style splits (``data.split``: one name or a list), ``data.kind:
text`` on raw text cut into ``max_length``-token chunks (MUSE ``raw/<split>``). The loss is the Trainer's token-mean
NLL. The rest of the config is as for ``run_unlearn`` (model, lora, training, output_dir, overwrite, resume).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch.utils.data import ConcatDataset

from baldro.data.from_config import qa_dataset, text_dataset
from baldro.training.arguments import apply_warmup_epochs
from baldro.training.device import fit_pin_memory
from baldro.training.pipeline import TrainingRun, run_with
from baldro.training.schema import FinetuneConfig


class ModelInputsCollator:
    """``QACollator`` without the ``index`` column (the model's forward does not take it). ``pad_masking``: see
    :class:`~baldro.data.collate.QACollator`; its ``0..T-1`` positions are dropped, as the model gives itself those
    (the Trainer calls it without ``position_ids``, as open-unlearning's does)."""

    def __init__(self, tokenizer: Any, pad_masking: str = "position") -> None:
        from baldro.data.collate import QACollator

        self.inner = QACollator(tokenizer, pad_masking=pad_masking)

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        batch = self.inner(items)
        batch.pop("index", None)
        batch.pop("position_ids", None)
        return batch


def finetune_dataset(data: dict[str, Any], tokenizer: Any, model: Any = None) -> Any:
    splits = data["split"] if isinstance(data["split"], list) else [data["split"]]
    if data["kind"] == "qa":
        parts = [qa_dataset(data, s, tokenizer, f"{s}") for s in splits]
    else:  # text (the schema allows no other)
        parts = [text_dataset(data, s, tokenizer, model) for s in splits]
    return parts[0] if len(parts) == 1 else ConcatDataset(parts)


def build_finetune_trainer(run: TrainingRun) -> Any:
    from transformers import Trainer

    data = run.config.raw["data"]
    dataset = finetune_dataset(data, run.tokenizer, run.model)
    run.record_format(dataset.datasets[0] if isinstance(dataset, ConcatDataset) else dataset)
    apply_warmup_epochs(run.args, run.config.raw.get("training"), len(dataset))
    fit_pin_memory(run.args)  # no pinning (and no DataLoader warning) without CUDA
    return Trainer(
        model=run.model,
        args=run.args,
        train_dataset=dataset,
        data_collator=ModelInputsCollator(run.tokenizer, data.get("pad_masking", "position")),
        processing_class=run.tokenizer,
    )


def parse_finetune(config: dict[str, Any]) -> FinetuneConfig:
    """The typed, completely validated config of a fine-tuning run (raises ConfigError); nothing is loaded."""
    return FinetuneConfig.parse(config)


def run_finetune(config: dict[str, Any] | FinetuneConfig) -> Path:
    """Fine-tune from a config mapping (parsed here) or a parsed :class:`FinetuneConfig`; returns the finished run
    folder."""
    parsed = config if isinstance(config, FinetuneConfig) else parse_finetune(config)
    return run_with(parsed, build_finetune_trainer, command="finetune")


def resolve_finetune(config: dict[str, Any]) -> dict[str, Any]:
    """The config mapping with defaults filled in, validated without loading anything (raises ConfigError): the
    ``raw`` mapping of :func:`parse_finetune`."""
    return parse_finetune(config).raw
