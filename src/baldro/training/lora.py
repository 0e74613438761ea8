"""LoRA through PEFT: ``lora: {r, alpha, dropout, target_modules, merge}``.

With gradient checkpointing the inputs of the frozen embedding must require grad, or the checkpointed blocks see no
grad-requiring input and the adapters get no gradient (lora_B stays zero — a known failure in the field's
framework); :func:`apply_lora` enables that.
"""

from __future__ import annotations

import re
from typing import Any

from torch import nn

from baldro.errors import ConfigError

DEFAULT_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def apply_lora(model: nn.Module, spec: Any, gradient_checkpointing: bool = False, seed: int | None = None) -> nn.Module:
    """Wrap ``model`` in a PEFT LoRA model (only the adapters train) as the validated ``lora`` section ``spec``
    (:class:`~baldro.training.schema.LoraSection`, defaults filled in) asks. ``seed``: set (``transformers.set_seed``)
    before the adapters are created, so that their random initialisation (``lora_A``) is the run's, the same on
    every run and every process — the Trainer seeds only later, when it is built."""
    from peft import LoraConfig, get_peft_model
    from transformers import set_seed

    targets = spec.target_modules or DEFAULT_TARGETS
    if isinstance(targets, str) and targets != "all-linear" and re.fullmatch(r"\w+", targets):
        targets = [targets]  # one module name; any other string is PEFT's: a regex over full names, or "all-linear"
    config = LoraConfig(r=spec.r, lora_alpha=spec.alpha, lora_dropout=spec.dropout, bias=spec.bias,
                        target_modules=targets if isinstance(targets, str) else list(targets), task_type="CAUSAL_LM")
    if gradient_checkpointing:
        model.enable_input_require_grads()
    if seed is not None:
        set_seed(int(seed))
    try:
        return get_peft_model(model, config)
    except ValueError as err:
        raise ConfigError(f"lora: {err}") from err


def save_merged(model: nn.Module, folder: Any) -> None:
    """Merge the adapters into the base weights and save a plain HF model to ``folder``."""
    merged = model.merge_and_unload()
    merged.save_pretrained(folder)
