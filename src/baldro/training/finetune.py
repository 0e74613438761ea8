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
from baldro.errors import ConfigError
from baldro.training.checks import check_data_pad_masking, check_max_length
from baldro.training.config import apply_warmup_epochs, section
from baldro.training.device import fit_pin_memory
from baldro.training.pipeline import COMMON_KEYS, TrainingRun, check_model_folder, resolve, run_with
from baldro.training.run_config import FinetuneConfig, RunConfig

FINETUNE_DATA_KEYS = ("source", "split", "kind", "format", "max_length", "pad_masking")
FINETUNE_DEFAULTS: dict[str, Any] = {
    "model": {"dtype": "float32"},
    "data": {"split": "full", "kind": "qa", "max_length": 512},
    "lora": None,
    "training": {},
    "overwrite": False,
    "resume": False,
}


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


def check_finetune(cfg: dict[str, Any]) -> None:
    """The data section's values, before the run starts."""
    data = section(cfg, "data")
    check_max_length(data)
    check_data_pad_masking(data)
    if data.get("kind") not in ("qa", "text"):
        raise ConfigError(f"data.kind {data.get('kind')!r} must be 'qa' or 'text'")


def finetune_dataset(data: dict[str, Any], tokenizer: Any, model: Any = None) -> Any:
    splits = data["split"] if isinstance(data["split"], list) else [data["split"]]
    if data["kind"] == "qa":
        parts = [qa_dataset(data, s, tokenizer, f"{s}") for s in splits]
    elif data["kind"] == "text":
        parts = [text_dataset(data, s, tokenizer, model) for s in splits]
    else:
        raise ConfigError(f"data.kind {data['kind']!r} must be 'qa' or 'text'")
    return parts[0] if len(parts) == 1 else ConcatDataset(parts)


def build_finetune_trainer(run: TrainingRun) -> Any:
    from transformers import Trainer

    dataset = finetune_dataset(run.config.data, run.tokenizer, run.model)
    run.record_format(dataset.datasets[0] if isinstance(dataset, ConcatDataset) else dataset)
    apply_warmup_epochs(run.args, run.config.training, len(dataset))
    fit_pin_memory(run.args)  # no pinning (and no DataLoader warning) without CUDA
    return Trainer(
        model=run.model,
        args=run.args,
        train_dataset=dataset,
        data_collator=ModelInputsCollator(run.tokenizer, run.config.data.get("pad_masking", "position")),
        processing_class=run.tokenizer,
    )


def parse_finetune(config: dict[str, Any]) -> FinetuneConfig:
    """The typed, completely validated config of a fine-tuning run (raises ConfigError); nothing is loaded."""
    cfg = resolve(config, FINETUNE_DEFAULTS, COMMON_KEYS, FINETUNE_DATA_KEYS)
    check_finetune(cfg)
    check_model_folder(cfg)
    return FinetuneConfig(**RunConfig.common(cfg))


def run_finetune(config: dict[str, Any] | FinetuneConfig) -> Path:
    """Fine-tune from a config mapping (parsed here) or a parsed :class:`FinetuneConfig`; returns the finished run
    folder."""
    parsed = config if isinstance(config, FinetuneConfig) else parse_finetune(config)
    return run_with(parsed, build_finetune_trainer, command="finetune")


def resolve_finetune(config: dict[str, Any]) -> dict[str, Any]:
    """The config mapping with defaults filled in, validated without loading anything (raises ConfigError): the
    ``raw`` mapping of :func:`parse_finetune`."""
    return parse_finetune(config).raw
