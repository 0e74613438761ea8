"""Models: loading a causal LM and its tokenizer (:mod:`.loading`) and the tiny from-scratch Llama of the offline demo
and the tests (:mod:`.tiny`).

Imports are lazy so that ``import baldro.modeling.loading`` does not build the tiny model's tokenizer machinery.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "build_tiny_model":
        from baldro.modeling.tiny import build_tiny_model

        return build_tiny_model
    raise AttributeError(f"module 'baldro.modeling' has no attribute {name!r}")


__all__ = ["build_tiny_model"]
