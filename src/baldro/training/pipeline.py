"""What ``run_unlearn`` and ``run_finetune`` share: config resolution, the run folder, saving, moving into place.

The run receives a typed, already validated config (:mod:`baldro.training.schema`) and checks nothing again."""

from __future__ import annotations

import copy
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from baldro.errors import ConfigError
from baldro.modeling.loading import load_model, load_tokenizer
from baldro.readback import replace_text
from baldro.runfolder import (
    CONFIG_FILE,
    RUN_INFO,
    FolderLock,
    claim_run,
    close_run,
    discard_failed,
    now,
    open_run,
    plan_run,
    read_run_info,
    write_run_info,
)
from baldro.training.arguments import training_arguments
from baldro.training.config_diff import check_resume_config, check_resume_inputs, input_fingerprints
from baldro.training.lora import apply_lora, save_merged
from baldro.training.schema import RunConfig
from baldro.training.sharding import check_full_save


def _drop_reference_cache(work: Path, changed: dict[str, Any]) -> None:
    """An accepted change of the data or the model makes the cached reference log-likelihoods stale: they are
    computed again (from the initial model: ``train()`` computes them before it loads the checkpoint)."""
    from baldro.training.reference_cache import REFERENCE_FILE

    cache = work / REFERENCE_FILE
    if cache.exists() and set(changed) & {"data.source", "model.path", "model.tokenizer"}:
        warnings.warn(f"{', '.join(sorted(changed))} changed: {REFERENCE_FILE} is computed again", stacklevel=3)
        cache.unlink()


class TrainingRun:
    """A run's folder, arguments, model and tokenizer, prepared on every process from its parsed ``config``.

    The main process holds the folder's lock (:class:`baldro.runfolder.FolderLock`) from before anything is written
    until the finished folder is in place; on an error its work folder is removed unless it holds checkpoints."""

    def __init__(self, config: RunConfig, command: str = "run", **forced_args: Any) -> None:
        from accelerate import PartialState

        self.config, self.cfg = config, config.raw
        overwrite, resume, output_dir = config.overwrite, config.resume, config.output_dir
        planned = plan_run(output_dir, overwrite, resume)  # read-only: refuse early, before the lock
        self.args = training_arguments(config.raw.get("training"), planned.work, **forced_args)
        self.state = PartialState()
        self.lock: FolderLock | None = None
        self.folder = planned
        if self.state.is_main_process:
            self.lock, self.folder = claim_run(output_dir, overwrite, resume)
            try:
                self._open(command)
            except BaseException:
                self.fail()
                raise
        self.state.wait_for_everyone()
        if not self.state.is_main_process:
            self.folder = plan_run(output_dir, overwrite, resume)
        try:
            self._load()
        except BaseException:
            self.fail()
            raise

    def _open(self, command: str) -> None:
        folder, cfg = self.folder, self.cfg
        changes: dict[str, Any] = {}
        changed_inputs: dict[str, Any] = {}
        history: list[Any] = []
        inputs = input_fingerprints(cfg)
        if folder.resume_from is not None:
            saved_at = folder.work if (folder.work / CONFIG_FILE).is_file() else folder.final
            changes = check_resume_config(saved_at, self.config, self.config.allow_config_change)
            saved_info = read_run_info(saved_at)
            changed_inputs = check_resume_inputs(saved_info.get("inputs"), inputs, self.config.allow_config_change)
            history = saved_info.get("resumed", [])
        open_run(folder)
        info_file = self.work / RUN_INFO
        self._info_before = info_file.read_text(encoding="utf-8") if info_file.is_file() else None
        if changed_inputs:
            _drop_reference_cache(self.work, changed_inputs)
        (self.work / CONFIG_FILE).write_text(yaml.safe_dump(copy.deepcopy(cfg), sort_keys=False), encoding="utf-8")
        info: dict[str, Any] = {"command": command, "seed": self.args.seed, "pid": os.getpid(), "started": now(),
                                "inputs": inputs}
        if folder.resume_from is not None:
            entry = {"at": now(), "from": folder.resume_from.name, "config_changes": changes}
            if changed_inputs:
                entry["input_changes"] = changed_inputs
            info["resumed"] = [*history, entry]
        write_run_info(self.work, **info)

    def record_format(self, dataset: Any) -> None:
        """Write the prompt format a QA dataset was built with, as it resolved for the tokenizer, into
        ``run_info.json`` (``prompt_format``, the label the eval files use)."""
        fmt = getattr(dataset, "fmt", None)
        if fmt is not None and self.state.is_main_process:
            from baldro.data.formatting import format_label

            write_run_info(self.work, prompt_format=format_label(fmt, self.tokenizer))

    def _load(self) -> None:
        model_spec = self.cfg["model"]
        self.model = load_model(model_spec)
        self.tokenizer = load_tokenizer(model_spec.get("tokenizer") or model_spec["path"])
        if self.model.get_input_embeddings().weight.shape[0] < len(self.tokenizer):
            raise ConfigError(f"model.path {model_spec['path']}: the tokenizer has more tokens than the model's embedding")
        self.lora = self.config.lora if self.cfg.get("lora") else None  # `lora: {}` trains no adapters, as before
        if self.lora:
            self.model = apply_lora(self.model, self.lora, bool(self.args.gradient_checkpointing), self.args.seed)

    @property
    def work(self) -> Path:
        return self.folder.work

    def fail(self) -> None:
        """After an error (main process): drop a work folder without checkpoints, put back the ``run_info.json`` a
        failed resume found (its "resumed" entry did not happen), release the lock."""
        if self.lock is not None:
            before = getattr(self, "_info_before", None)
            if self.folder.resume_from is not None and before is not None and self.work.is_dir():
                replace_text(self.work / RUN_INFO, before)
            discard_failed(self.folder)
            self.lock.release()

    def train_and_save(self, trainer: Any) -> Path:
        """Train (resuming when asked), save model + tokenizer + state, then move into place and release the lock."""
        try:
            check_full_save(trainer)  # before training: a sharded save would leave a "finished" run without weights
            resume = str(self.folder.resume_from) if self.folder.resume_from else None
            trainer.train(resume_from_checkpoint=resume)
            trainer.save_model(str(self.work))
            trainer.save_state()
            if self.state.is_main_process:
                self.tokenizer.save_pretrained(str(self.work))
                if self.lora and self.lora.merge:
                    save_merged(trainer.model, self.work / "merged")
                    self.tokenizer.save_pretrained(str(self.work / "merged"))
                write_run_info(self.work, finished=now())
            self.state.wait_for_everyone()
            if self.state.is_main_process:
                close_run(self.folder)
        except BaseException:
            self.fail()
            raise
        if self.lock is not None:
            self.lock.release()
        self.state.wait_for_everyone()
        return self.folder.final


def run_with(
    config: RunConfig,
    build: Callable[[TrainingRun], Any],
    command: str = "run",
    callbacks: Sequence[Any] = (),
) -> Path:
    """Lock, prepare, train, save and move a run of a parsed ``config`` (validated before any folder is touched).

    ``callbacks``: extra ``transformers.TrainerCallback``s added to the trainer (e.g. the unlearning-curve
    evaluation of :mod:`baldro.evaluation.trajectory`, which the caller builds: training does not import it)."""
    run = TrainingRun(config, command, remove_unused_columns=False)
    try:
        trainer = build(run)
        for callback in callbacks:
            trainer.add_callback(callback)
    except BaseException:
        run.fail()
        raise
    return run.train_and_save(trainer)


__all__ = ["TrainingRun", "apply_lora", "run_with"]
