"""Shared fixtures for the core specification tests: hand-built sequence statistics and a tiny random Llama."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from baldro.core.sequence import SequenceStats

StatsFactory = Callable[..., SequenceStats]


def stats_from_rows(rows: list[list[float]], dtype: torch.dtype = torch.float64) -> SequenceStats:
    """SequenceStats whose row b has the given per-token NLLs (token_nll requires grad)."""
    flat = [v for row in rows for v in row]
    index = [b for b, row in enumerate(rows) for _ in row]
    return SequenceStats(
        token_nll=torch.tensor(flat, dtype=dtype, requires_grad=True),
        sample_index=torch.tensor(index, dtype=torch.long),
        n_tokens=torch.tensor([len(row) for row in rows], dtype=torch.long),
        batch_size=len(rows),
    )


@pytest.fixture
def make_stats() -> StatsFactory:
    return stats_from_rows


@pytest.fixture(scope="session")
def tiny_llama() -> torch.nn.Module:
    """An untrained LlamaForCausalLM (vocab 97, hidden 32, 2 layers, 4 heads), float32, eval mode.

    ``initializer_range=0.3`` makes the next-token distributions far from uniform, so a wrong position or a
    missing mask changes the NLL visibly (with the default 0.02 every NLL is ≈ log 97).
    """
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=97,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=64,
        initializer_range=0.3,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    )
    return LlamaForCausalLM(config).float().eval()
