"""Loading a causal LM and its tokenizer from a config's ``model`` section (or a folder / hub id).

Below training and evaluation: both load models through here (see tests/test_layers.py for the layering rule).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch

from baldro.errors import ConfigError
from baldro.readback import safetensors_problem

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16, "auto": "auto"}


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
    for weights in sorted(local.glob("*.safetensors")) if local.is_dir() else ():
        problem = safetensors_problem(weights)
        if problem is not None:
            raise ConfigError(f"model.path {path}: {weights.name} is damaged ({problem}); copy or save the model again")
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
