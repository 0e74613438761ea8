"""``transformers.TrainingArguments`` from a run config's ``training`` section (validated by
:func:`baldro.training.schema.training_section`), and open-unlearning's warm-up in epochs."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from baldro.errors import ConfigError


def training_arguments(section: dict[str, Any] | None, output_dir: str | Path, **forced: Any) -> Any:
    """``TrainingArguments`` from the ``training`` section (checked as in a run config: key path and nearest names on
    error). Defaults differing from HF: ``report_to="none"`` unless given. ``forced`` values (e.g.
    ``remove_unused_columns=False``) always win. transformers 5 dropped ``warmup_ratio`` (a ``warmup_steps`` below 1
    is a ratio there): it is mapped over."""
    from pydantic import ValidationError
    from transformers import TrainingArguments

    from baldro.training.schema import UnlearnConfig, explain, training_section

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
