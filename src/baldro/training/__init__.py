"""Training on the Hugging Face ``Trainer``: ``UnlearnTrainer``, ``run_unlearn`` and ``run_finetune``.

Imports are lazy so that ``import baldro.training`` does not import transformers.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "UnlearnTrainer": "baldro.training.trainer",
    "NonFiniteLossError": "baldro.training.trainer",
    "ReferenceCache": "baldro.training.reference_cache",
    "run_unlearn": "baldro.training.unlearn",
    "run_finetune": "baldro.training.finetune",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'baldro.training' has no attribute {name!r}")


__all__ = list(_EXPORTS)
