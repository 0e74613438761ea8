"""A GGUF checkpoint as a trainable Hugging Face folder: dequantised to float32 and saved with ``save_pretrained``.

transformers loads a GGUF file (``from_pretrained(..., gguf_file=...)``) dequantised, but the loaded model keeps a
``quantization_config`` that the Trainer refuses to fine-tune in full; rebuilding it from its config without that
field and saving it gives an ordinary float32 checkpoint (the weights are the quantised ones: a Q4_1 file gives 4-bit
weights in float32, not the original bf16 model). Needs the ``gguf`` package (``pip install 'baldro[gguf]'``).
"""

from __future__ import annotations

from pathlib import Path

from baldro.errors import ConfigError


def gguf_file(folder: str | Path) -> Path:
    """The one ``*.gguf`` file of ``folder`` (or ``folder`` itself when it is a ``.gguf`` file)."""
    path = Path(folder).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return path
    files = sorted(path.glob("*.gguf")) if path.is_dir() else []
    if len(files) != 1:
        found = ", ".join(f.name for f in files) or "none"
        raise ConfigError(f"{path}: expected one .gguf file (found {found}); pass the file itself")
    return files[0]


def dequantise_gguf(source: str | Path, out: str | Path) -> Path:
    """Save the GGUF model at ``source`` (a file or a folder holding one) as a float32 Hugging Face folder ``out``
    (model, generation config and tokenizer); returns ``out``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    file = gguf_file(source)
    try:
        tok = AutoTokenizer.from_pretrained(file.parent, gguf_file=file.name)
        loaded = AutoModelForCausalLM.from_pretrained(file.parent, gguf_file=file.name, dtype=torch.float32)
    except ImportError as err:
        raise ConfigError(f"reading {file} needs the gguf package: pip install 'baldro[gguf]' ({err})") from err
    config = loaded.config
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict(), strict=True)
    model.generation_config = loaded.generation_config
    out = Path(out)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out
