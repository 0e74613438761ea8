"""Fitting a run's arguments to the machine: bf16 without a bf16 GPU, ``pin_memory`` without CUDA.

* :func:`check_bf16_device` — the TOFU / MUSE presets train in bf16 (``training.bf16: true``, as open-unlearning's
  scripts do). ``TrainingArguments`` refuses that on a machine without a bf16 GPU (and without ``use_cpu``) with
  "Your setup doesn't support bf16/gpu"; this check says it first, in one line that names the CPU variant of
  docs/real-models.md ("On a CPU, or with a small model"), before any model is loaded or any folder written.
* :func:`fit_pin_memory` — ``dataloader_pin_memory`` defaults to true; without CUDA PyTorch's ``DataLoader`` warns
  "'pin_memory' argument is set as true but no accelerator is found" on every run, and pinning does nothing there.
  It is kept only where CUDA is available (and ``use_cpu`` is off: transformers then turns it off itself).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from baldro.errors import ConfigError

# The CPU variant of any preset, as docs/real-models.md gives it (tests/training/test_device.py keeps them in step).
CPU_VARIANT = "--set training.bf16=false --set training.use_cpu=true --set model.dtype=float32"


def bf16_device_available() -> bool:
    """Whether ``TrainingArguments(bf16=True)`` is accepted here without ``use_cpu``: transformers' own test (a CUDA
    GPU with bf16, Ampere or newer, or another bf16 accelerator it knows; or XLA)."""
    from transformers.utils import is_torch_bf16_gpu_available, is_torch_xla_available

    return bool(is_torch_bf16_gpu_available() or is_torch_xla_available())


def check_bf16_device(training: Mapping[str, Any], available: bool | None = None) -> None:
    """ConfigError, one line naming the CPU variant, when the ``training`` section asks for bf16 (``bf16`` or
    ``bf16_full_eval``) without ``use_cpu`` on a machine without a bf16 GPU. ``available``: the machine's answer
    (:func:`bf16_device_available` when None)."""
    keys = [k for k in ("bf16", "bf16_full_eval") if training.get(k)]
    if not keys or training.get("use_cpu"):
        return
    if available is None:
        available = bf16_device_available()
    if available:
        return
    raise ConfigError(
        f"training.{keys[0]}=true needs a GPU with bf16 and this machine has none; to run on the CPU add "
        f"{CPU_VARIANT} (docs/real-models.md, 'On a CPU')"
    )


def fit_pin_memory(args: Any, cuda: bool | None = None) -> None:
    """Turn ``args.dataloader_pin_memory`` off unless CUDA is available (``cuda``: the machine's answer,
    ``torch.cuda.is_available()`` when None), so that a CPU run's data loader pins nothing and warns nothing."""
    if cuda is None:
        import torch

        cuda = torch.cuda.is_available()
    if not cuda:
        args.dataloader_pin_memory = False


__all__ = ["CPU_VARIANT", "bf16_device_available", "check_bf16_device", "fit_pin_memory"]
