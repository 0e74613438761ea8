"""What the training code must know about parameter-sharding engines (FSDP1, FSDP2, DeepSpeed ZeRO-3) and about
several processes: whether a model's parameters are sharded, whether the run's model would be saved in full, and
the logged metrics pooled over processes.
"""

from __future__ import annotations

from typing import Any

import torch.distributed as dist

from baldro.core.sharded import parameters_sharded
from baldro.errors import ConfigError

__all__ = ["check_full_save", "full_save_problem", "parameters_sharded", "pooled_means"]


def full_save_problem(fsdp_state_dict_type: Any = None, deepspeed_config: dict[str, Any] | None = None) -> str | None:
    """Why the Trainer's ``save_model`` would not write the full Hugging Face model, or None. FSDP saves
    ``model.safetensors`` only with ``FULL_STATE_DICT`` (accelerate's default is ``SHARDED_STATE_DICT``: no weights
    at all); ZeRO-3 only with ``stage3_gather_16bit_weights_on_model_save`` (else a DeepSpeed checkpoint that needs
    ``zero_to_fp32.py``)."""
    if fsdp_state_dict_type is not None and "FULL_STATE_DICT" not in str(fsdp_state_dict_type):
        name = str(fsdp_state_dict_type).rsplit(".", 1)[-1]
        return (f"FSDP would save the model as {name}, which writes no Hugging Face weights into the run folder; "
                "set training.fsdp_config.state_dict_type: FULL_STATE_DICT (accelerate config: "
                "fsdp_state_dict_type: FULL_STATE_DICT)")
    zero = (deepspeed_config or {}).get("zero_optimization") or {}
    gather = zero.get("stage3_gather_16bit_weights_on_model_save", zero.get("gather_16bit_weights_on_model_save"))
    if int(zero.get("stage", 0) or 0) == 3 and str(gather).lower() != "true":
        return ("DeepSpeed ZeRO-3 without zero_optimization.stage3_gather_16bit_weights_on_model_save: true saves a "
                "sharded DeepSpeed checkpoint instead of the Hugging Face model; set it to true in the DeepSpeed "
                "config (configs/launch/ds_zero3.json does)")
    return None


def check_full_save(trainer: Any) -> None:
    """ConfigError, before any training, when ``trainer`` would not save the full model (:func:`full_save_problem`)."""
    state = trainer.accelerator.state
    plugin = getattr(state, "fsdp_plugin", None) if getattr(trainer, "is_fsdp_enabled", False) else None
    ds_config = None
    if getattr(trainer, "is_deepspeed_enabled", False):
        hf_config = getattr(trainer.args, "hf_deepspeed_config", None)
        ds_config = getattr(hf_config, "config", None)
        if ds_config is None:
            ds_plugin = getattr(state, "deepspeed_plugin", None)
            ds_config = getattr(ds_plugin, "deepspeed_config", None)
    problem = full_save_problem(getattr(plugin, "state_dict_type", None) if plugin is not None else None, ds_config)
    if problem is not None:
        raise ConfigError(problem)


def pooled_means(metrics: dict[str, list[float]], weights: dict[str, list[float]] | None = None) -> dict[str, float]:
    """Mean of each metric's values over every process: Σ w·value / Σ w, with w the value's weight in ``weights``
    (same length as its values) or 1. A collective where several processes run: every process must call it at the
    same point, whatever it holds."""
    weights = weights or {}
    local: dict[str, tuple[float, float]] = {}
    for key, values in metrics.items():
        w = weights.get(key) or [1.0] * len(values)
        if values:
            local[key] = (float(sum(v * x for v, x in zip(values, w))), float(sum(w)))
    parts: list[Any] = [local]
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        parts = [None] * dist.get_world_size()
        dist.all_gather_object(parts, local)
    totals: dict[str, list[float]] = {}
    for part in parts:
        for key, (total, weight) in (part or {}).items():
            acc = totals.setdefault(key, [0.0, 0.0])
            acc[0] += total
            acc[1] += weight
    return {key: total / weight for key, (total, weight) in totals.items() if weight}
