"""What ``run_unlearn`` and ``run_finetune`` share: config resolution, the run folder, saving, moving into place."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from baldro.errors import ConfigError
from baldro.training.config import check_keys, deep_merge, section, training_argument_names, training_arguments
from baldro.training.loading import MODEL_KEYS, load_model, load_tokenizer
from baldro.training.lora import apply_lora, save_merged
from baldro.training.runs import CONFIG_FILE, RunFolder, close_run, open_run, plan_run

COMMON_KEYS = ("name", "description", "model", "data", "lora", "training", "output_dir", "overwrite", "resume")


def resolve(config: dict[str, Any], defaults: dict[str, Any], keys: tuple[str, ...], data_keys: tuple[str, ...]) -> dict:
    """Defaults merged under the user's config, every section's keys checked."""
    if not isinstance(config, dict):
        raise ConfigError(f"a run config must be a mapping, got {type(config).__name__}")
    cfg = deep_merge(defaults, config)
    check_keys(cfg, keys, "")
    check_keys(section(cfg, "model"), MODEL_KEYS, "model.")
    check_keys(section(cfg, "data"), data_keys, "data.")
    if not cfg.get("output_dir"):
        raise ConfigError("the config needs output_dir: the folder the run writes (set it with --set output_dir=...)")
    training = section(cfg, "training")
    if "output_dir" in training:
        raise ConfigError("set the run folder with the top-level key output_dir, not training.output_dir")
    check_keys(training, [n for n in training_argument_names() if n != "output_dir"], "training.")
    return cfg


class Run:
    """A run's folder, arguments, model and tokenizer, prepared on every process."""

    def __init__(self, cfg: dict[str, Any], **forced_args: Any) -> None:
        from accelerate import PartialState

        self.cfg = cfg
        self.folder: RunFolder = plan_run(cfg["output_dir"], bool(cfg.get("overwrite")), bool(cfg.get("resume")))
        self.args = training_arguments(section(cfg, "training"), self.folder.work, **forced_args)
        self.state = PartialState()
        if self.state.is_main_process:
            open_run(self.folder)
        self.state.wait_for_everyone()
        model_spec = section(cfg, "model")
        self.model = load_model(model_spec)
        self.tokenizer = load_tokenizer(model_spec.get("tokenizer") or model_spec["path"])
        if self.model.get_input_embeddings().weight.shape[0] < len(self.tokenizer):
            raise ConfigError(f"model.path {model_spec['path']}: the tokenizer has more tokens than the model's embedding")
        self.lora = cfg.get("lora")
        if self.lora:
            self.model = apply_lora(self.model, dict(self.lora), bool(self.args.gradient_checkpointing))

    @property
    def work(self) -> Path:
        return self.folder.work

    def train_and_save(self, trainer: Any) -> Path:
        """Train (resuming when asked), save model + tokenizer + state + resolved config, then move into place."""
        if self.state.is_main_process:
            resolved = copy.deepcopy(self.cfg)
            (self.work / CONFIG_FILE).write_text(yaml.safe_dump(resolved, sort_keys=False), encoding="utf-8")
        resume = str(self.folder.resume_from) if self.folder.resume_from else None
        trainer.train(resume_from_checkpoint=resume)
        trainer.save_model(str(self.work))
        trainer.save_state()
        if self.state.is_main_process:
            self.tokenizer.save_pretrained(str(self.work))
            if self.lora and self.lora.get("merge"):
                save_merged(trainer.model, self.work / "merged")
                self.tokenizer.save_pretrained(str(self.work / "merged"))
        self.state.wait_for_everyone()
        if self.state.is_main_process:
            close_run(self.folder)
        self.state.wait_for_everyone()
        return self.folder.final


def run_with(
    config: dict[str, Any],
    build: Callable[[Run], Any],
    defaults: dict,
    keys: tuple,
    data_keys: tuple,
    check: Callable[[dict], None] | None = None,
    callbacks: Sequence[Any] = (),
) -> Path:
    """Resolve and ``check`` the config (before any folder is touched), then prepare, train, save, move.

    ``callbacks``: extra ``transformers.TrainerCallback``s added to the trainer (e.g. the unlearning-curve
    evaluation of :mod:`baldro.evaluation.trajectory`, which the caller builds: training does not import it)."""
    cfg = resolve(config, defaults, keys, data_keys)
    if check is not None:
        check(cfg)
    run = Run(cfg, remove_unused_columns=False)
    trainer = build(run)
    for callback in callbacks:
        trainer.add_callback(callback)
    return run.train_and_save(trainer)


__all__ = ["COMMON_KEYS", "Run", "apply_lora", "resolve", "run_with"]
