"""Fixtures of the data-layer tests: small tokenizers and the location of the real TOFU data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tokenizer_helpers import CHAT_TEMPLATE, build_tokenizer
from transformers import PreTrainedTokenizerFast

# BALDRO_TOFU_DIR overrides the checkout's ../shared/data/tofu (e.g. for a git worktree elsewhere)
TOFU_DIR = Path(os.environ.get("BALDRO_TOFU_DIR") or Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "tofu")


@pytest.fixture(scope="session")
def plain_tokenizer() -> PreTrainedTokenizerFast:
    return build_tokenizer()


@pytest.fixture(scope="session")
def chat_tokenizer() -> PreTrainedTokenizerFast:
    """Chat template whose assistant turn ends with <|im_end|>; EOS is <|im_end|> like SmolLM2/Qwen."""
    tok = build_tokenizer(CHAT_TEMPLATE)
    tok.eos_token = "<|im_end|>"
    return tok


@pytest.fixture(scope="session")
def tofu_dir() -> Path:
    if not (TOFU_DIR / "full.json").is_file():
        pytest.skip(f"real TOFU data not found at {TOFU_DIR} (see its SOURCE.md)")
    return TOFU_DIR
