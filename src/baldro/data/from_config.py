"""Datasets from a run config's ``data`` section: the prompt format, TOFU-style QA splits and MUSE raw text.

Heavy imports (the dataset classes, torch) happen inside the functions, so reading the config stays cheap.
"""

from __future__ import annotations

import warnings
from typing import Any

from baldro.errors import ConfigError


def prompt_format(spec: Any) -> Any:
    """``data.format``: a preset name (see ``baldro.data.prompt_formats.PRESETS``) or a mapping of ``PromptFormat``
    fields (optionally with ``preset``; without one the fields apply over the default); None: the default."""
    from baldro.data.prompt_formats import format_from_spec

    return format_from_spec(spec, "data.format")


def qa_dataset(data: dict[str, Any], split: str, tokenizer: Any, name: str, rows: list[dict] | None = None) -> Any:
    """A ``QADataset`` of one TOFU-style split of ``data.source``."""
    from baldro.data.collate import QADataset
    from baldro.data.tofu import load_tofu_split

    if not data.get("source"):
        raise ConfigError("the config needs data.source: a TOFU-style folder or hub id")
    rows = load_tofu_split(data["source"], split) if rows is None else rows
    return QADataset(rows, tokenizer, prompt_format(data.get("format")), int(data.get("max_length", 512)), name=name)


def text_dataset(data: dict[str, Any], split: str, tokenizer: Any, model: Any = None) -> Any:
    """A ``TextChunkDataset`` of MUSE ``raw/<split>`` text of ``data.source``, in ``max_length``-token chunks (each
    re-tokenised with BOS, as open-unlearning does). With ``model``, chunks are shortened so that BOS + chunk fits its
    ``max_position_embeddings`` (with a warning)."""
    from baldro.core.positions import max_positions
    from baldro.data.muse import TextChunkDataset, load_muse

    if not data.get("source"):
        raise ConfigError("the config needs data.source: a MUSE-style folder or hub id")
    texts = [row["text"] for row in load_muse(data["source"], "raw", split)]
    length = int(data.get("max_length", 2048))
    limit = max_positions(model) if model is not None else None
    n_special = len(tokenizer("", add_special_tokens=True)["input_ids"])
    if limit is not None and length + n_special > limit:
        warnings.warn(
            f"data.max_length={length} (+{n_special} special token) is longer than the model's "
            f"max_position_embeddings={limit}: raw/{split} is cut into {limit - n_special}-token chunks",
            UserWarning,
            stacklevel=2,
        )
        length = limit - n_special
    return TextChunkDataset.from_texts(texts, tokenizer, length)
