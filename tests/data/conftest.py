"""Fixtures of the data-layer tests: small tokenizers (the real TOFU data: ``tofu_dir`` in tests/conftest.py)."""

from __future__ import annotations

import pytest
from tokenizer_helpers import CHAT_TEMPLATE, build_tokenizer
from transformers import PreTrainedTokenizerFast


@pytest.fixture(scope="session")
def plain_tokenizer() -> PreTrainedTokenizerFast:
    return build_tokenizer()


@pytest.fixture(scope="session")
def chat_tokenizer() -> PreTrainedTokenizerFast:
    """Chat template whose assistant turn ends with <|im_end|>; EOS is <|im_end|> like SmolLM2/Qwen."""
    tok = build_tokenizer(CHAT_TEMPLATE)
    tok.eos_token = "<|im_end|>"
    return tok

