"""Loading what a run needs from its config: the model and tokenizer, and the QA / text datasets."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch

from baldro.errors import ConfigError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16, "auto": "auto"}
MODEL_KEYS = ("path", "tokenizer", "dtype", "attn_implementation", "trust_remote_code")


def _dtype_kwargs(dtype: Any) -> dict[str, Any]:
    import transformers

    major_minor = tuple(int(p) for p in transformers.__version__.split(".")[:2])
    return {"dtype": dtype} if major_minor >= (4, 56) else {"torch_dtype": dtype}


def load_tokenizer(path: str | Path) -> Any:
    """The tokenizer at ``path``; one without a pad token pads with EOS (with a warning)."""
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(str(path))
    except (OSError, ValueError) as err:
        raise ConfigError(f"cannot load a tokenizer from {path}: {str(err).splitlines()[0]}") from err
    if tok.pad_token is None:
        if tok.eos_token is None:
            raise ConfigError(f"the tokenizer at {path} has neither a pad nor an EOS token; add a pad token")
        warnings.warn(f"the tokenizer at {path} has no pad token; padding with EOS ({tok.eos_token!r})", stacklevel=2)
        tok.pad_token = tok.eos_token
    return tok


def check_model_source(spec: dict[str, Any], training: bool = False, lora: bool = False) -> Path:
    """Check ``model.path`` before any work: a local folder must hold ``config.json``; for ``training``, a checkpoint
    whose config still carries ``quantization_config`` (e.g. converted from GGUF, or saved with bitsandbytes) cannot
    be trained in full (transformers' Trainer refuses it) unless a LoRA adapter is trained on it (``lora``).
    Returns the local path."""
    path = spec.get("path")
    if not path:
        raise ConfigError("the config needs model.path: a folder with a Hugging Face causal LM (or a hub id)")
    local = Path(str(path)).expanduser()
    if (str(path).startswith((".", "/", "~")) or local.exists()) and not (local / "config.json").is_file():
        raise ConfigError(f"model.path {path} is not a model folder (no config.json there); check the path")
    if training and not lora and (local / "config.json").is_file():
        try:
            config = json.loads((local / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise ConfigError(f"{local / 'config.json'}: not valid JSON ({err})") from err
        quant = config.get("quantization_config") if isinstance(config, dict) else None
        if quant is not None:
            method = quant.get("quant_method", "unknown") if isinstance(quant, dict) else "unknown"
            raise ConfigError(
                f"{local / 'config.json'}: the checkpoint carries a quantization_config (quant_method {method!r}), "
                "which cannot be fully fine-tuned: save a de-quantized copy (load it with transformers and "
                "save_pretrained in bfloat16/float32, or delete the 'quantization_config' entry if the weights are "
                "stored unquantized), or train a LoRA adapter on it (lora: {...})"
            )
    return local


def load_model(spec: dict[str, Any]) -> Any:
    """``AutoModelForCausalLM`` from ``model.path`` (a local folder or hub id) in ``model.dtype`` (default float32)."""
    from transformers import AutoModelForCausalLM

    path = spec.get("path")
    local = check_model_source(spec)
    dtype = spec.get("dtype", "float32")
    if dtype not in DTYPES:
        raise ConfigError(f"model.dtype {dtype!r} is not one of {', '.join(DTYPES)}")
    kwargs = _dtype_kwargs(DTYPES[dtype])
    if spec.get("attn_implementation"):
        kwargs["attn_implementation"] = spec["attn_implementation"]
    if spec.get("trust_remote_code"):
        kwargs["trust_remote_code"] = True
    try:
        return AutoModelForCausalLM.from_pretrained(str(local if local.exists() else path), **kwargs)
    except (OSError, ValueError) as err:
        raise ConfigError(f"cannot load model.path {path}: {str(err).splitlines()[0]}") from err


def prompt_format(spec: Any) -> Any:
    """``data.format``: a preset name (see ``baldro.data.formatting.PRESETS``) or a mapping of ``PromptFormat``
    fields (optionally with ``preset``)."""
    from baldro.data.formatting import PromptFormat

    if spec is None:
        return PromptFormat()
    if isinstance(spec, str):
        return PromptFormat.preset(spec)
    if not isinstance(spec, dict):
        raise ConfigError(f"data.format must be a preset name or a mapping, got {spec!r}")
    spec = dict(spec)
    preset = spec.pop("preset", None)
    if not preset and spec:
        spec.setdefault("name", "custom")
    try:
        return PromptFormat.preset(preset, **spec) if preset else PromptFormat(**spec)
    except TypeError as err:
        raise ConfigError(f"data.format: {err}") from err


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
