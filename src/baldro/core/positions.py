"""The longest sequence a model accepts, read from its config (for capping MUSE's 2048-token items)."""

from __future__ import annotations

from typing import Any

POSITION_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length")


def max_positions(model: Any) -> int | None:
    """``max_position_embeddings`` (``n_positions`` for GPT-2-style configs) of ``model.config``; None if unknown.

    A PEFT wrapper forwards ``config`` to the base model, so wrapped models work too.
    """
    config = getattr(model, "config", None)
    for key in POSITION_KEYS:
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None
