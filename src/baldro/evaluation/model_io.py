"""The model and tokenizer an evaluation runs on: a loaded model, or a folder / hub id loaded here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from baldro.errors import ConfigError
from baldro.modeling.loading import load_model, load_tokenizer


def prepare_model(
    model_or_path: str | Path | nn.Module, tokenizer: Any = None, dtype: str | None = None, device: str | None = None
) -> tuple[nn.Module, Any, int]:
    """(model in eval mode on ``device``, tokenizer, pad id).

    A path is loaded in ``dtype`` (default: bfloat16 on a GPU, float32 on CPU) and moved to ``device`` (default:
    CUDA when available). A model object is used as it is; its tokenizer comes from ``tokenizer`` or from
    ``model.name_or_path``.
    """
    if isinstance(model_or_path, nn.Module):
        model = model_or_path
        if tokenizer is None:
            name = getattr(model, "name_or_path", None) or getattr(getattr(model, "config", None), "_name_or_path", "")
            if not name:
                raise ConfigError("pass the tokenizer with a model object (it has no name_or_path to load one from)")
            tokenizer = load_tokenizer(name)
    else:
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = dtype or ("bfloat16" if device.startswith("cuda") else "float32")
        model = load_model({"path": str(model_or_path), "dtype": dtype}).to(device)
        tokenizer = tokenizer or load_tokenizer(model_or_path)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if tokenizer.eos_token_id is None:
        raise ConfigError("the tokenizer has no EOS token; answers are scored up to and including EOS")
    model.eval()
    return model, tokenizer, int(tokenizer.pad_token_id)
