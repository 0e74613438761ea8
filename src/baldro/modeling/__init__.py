"""Models: the tiny from-scratch Llama used by the offline demo and the tests."""

from baldro.modeling.tiny import build_tiny_model

__all__ = ["build_tiny_model"]
