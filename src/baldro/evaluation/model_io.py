"""The model and tokenizer an evaluation runs on: a loaded model, or a folder / hub id loaded here.

Precision (``--dtype``): open-unlearning evaluates in the ``torch_dtype`` of its model config (``bfloat16`` for every
model it ships a config for, float32 where none is set: ``src/model/__init__.py``, ``get_dtype``). baldro has no
model configs of its own, so ``auto`` (the default) takes the dtype the checkpoint's ``config.json`` names
(``dtype`` / ``torch_dtype``, float32 when it names none) — ``bfloat16`` for checkpoints saved from bf16 training, as
open-unlearning's are. On a CPU, ``auto`` loads a half-precision checkpoint in float32 instead: CPUs without bf16
matrix units (AVX512-BF16 / AMX) emulate bf16 products many times slower, float16 kernels are partly missing there,
and the project's CPU measurements are float32. ``--dtype bfloat16`` (or ``float16``) forces the precision on any
device. The dtype the parameters really have is recorded in the eval files (``model_dtype``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

from baldro.errors import ConfigError
from baldro.modeling.loading import DTYPES, load_model, load_tokenizer

HALF = ("bfloat16", "float16")


def checkpoint_dtype(path: str | Path) -> str:
    """The dtype the checkpoint's config names (``dtype``, older ``torch_dtype``; read with ``AutoConfig``, so a hub
    id works too), ``float32`` when it names none or the config cannot be read (loading then says why)."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(str(path))
    except (OSError, ValueError):
        return "float32"
    named = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None)
    name = str(named).removeprefix("torch.") if named is not None else "float32"
    return name if name in DTYPES and name != "auto" else "float32"


def resolve_dtype(path: str | Path, dtype: str | None, device: str) -> tuple[str, str | None]:
    """(dtype to load ``path`` in, a note to print or None). ``auto``/None: :func:`checkpoint_dtype`, float32 on CPU
    in place of a half-precision one (module docstring)."""
    requested = dtype or "auto"
    if requested not in DTYPES:
        raise ConfigError(f"--dtype {requested!r} is not one of {', '.join(DTYPES)}")
    if requested != "auto":
        return requested, None
    named = checkpoint_dtype(path)
    if named in HALF and not device.startswith("cuda"):
        return "float32", (f"the checkpoint is {named}; evaluating in float32 on {device} (--dtype auto). Pass "
                           f"--dtype {named} to evaluate in the checkpoint's precision, as on a GPU")
    return named, None


def dtype_name(model: nn.Module) -> str:
    """The floating-point dtype of ``model``'s parameters (``bfloat16``, ``float32``, ...; ``mixed`` if several)."""
    found = {str(p.dtype).removeprefix("torch.") for p in model.parameters() if p.is_floating_point()}
    return found.pop() if len(found) == 1 else ("mixed" if found else "none")


def prepare_model(
    model_or_path: str | Path | nn.Module, tokenizer: Any = None, dtype: str | None = None, device: str | None = None
) -> tuple[nn.Module, Any, int]:
    """(model in eval mode on ``device``, tokenizer, pad id).

    A path is loaded in ``dtype`` (``auto``/None: :func:`resolve_dtype`) and moved to ``device`` (default: CUDA when
    available). A model object is used as it is (a ``dtype`` other than ``auto`` is refused: cast it yourself); its
    tokenizer comes from ``tokenizer`` or from ``model.name_or_path``.
    """
    if isinstance(model_or_path, nn.Module):
        if dtype not in (None, "auto"):
            raise ConfigError(f"dtype={dtype!r} applies to a model loaded from a path; cast the model object instead")
        model = model_or_path
        if tokenizer is None:
            name = getattr(model, "name_or_path", None) or getattr(getattr(model, "config", None), "_name_or_path", "")
            if not name:
                raise ConfigError("pass the tokenizer with a model object (it has no name_or_path to load one from)")
            tokenizer = load_tokenizer(name)
    else:
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        resolved, note = resolve_dtype(model_or_path, dtype, device)
        if note:
            print(f"baldro eval: {note}", file=sys.stderr)
        model = load_model({"path": str(model_or_path), "dtype": resolved}).to(device)
        tokenizer = tokenizer or load_tokenizer(model_or_path)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if tokenizer.eos_token_id is None:
        raise ConfigError("the tokenizer has no EOS token; answers are scored up to and including EOS")
    model.eval()
    return model, tokenizer, int(tokenizer.pad_token_id)
