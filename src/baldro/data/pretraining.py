"""Pre-training-style items (MUSE raw text, verbmem and privleak) exactly as open-unlearning builds them.

* :func:`pretraining_item` — ``src/data/utils.py::preprocess_pretraining_instance``: the sequence is
  ``tokenizer(prefix [+ " "] + text)`` with the tokenizer's special tokens (BOS for Llama, none for GPT-2), cut to
  ``len(tokenizer(prefix)) + max_length`` tokens (so BOS + 2048 text tokens for an empty prefix); **no EOS** is
  appended. Labels are ``-100`` on the first ``max(len(tokenizer(prefix)), 1)`` positions and the tokens elsewhere.
* :func:`chunk_texts` — ``PretrainingDataset._chunk_raw_text``: documents joined with ``"\\n\\n"``, tokenised without
  special tokens, cut every ``max_length`` tokens and decoded back to text; each chunk is then re-tokenised by
  :func:`pretraining_item` (with BOS). open-unlearning also keeps the empty last chunk when the stream length is a
  multiple of ``max_length`` (an item with no labelled token); we drop it.

The metrics then drop the last labelled token where open-unlearning's ``tokenwise_logprobs`` does ("ignore eos
prediction": Min-K%, Min-K%++, exact memorisation, extraction strength); ``mia_loss`` keeps it.
"""

from __future__ import annotations

from typing import Any

from baldro.core.labels import IGNORE_INDEX
from baldro.errors import ConfigError


def pretraining_item(
    tokenizer: Any, prefix: str, text: str, max_length: int, insert_space: bool = False
) -> tuple[list[int], list[int]]:
    """(input_ids, labels) of ``prefix`` (unlabelled) followed by ``text`` (labelled), as open-unlearning builds it."""
    if max_length < 1:
        raise ConfigError(f"max_length must be positive, got {max_length}")
    full = list(tokenizer(prefix + (" " if insert_space else "") + text, add_special_tokens=True)["input_ids"])
    n_prefix = len(tokenizer(prefix, add_special_tokens=True)["input_ids"])
    full = full[: n_prefix + max_length]
    n_masked = max(n_prefix, 1)
    return full, [IGNORE_INDEX] * min(n_masked, len(full)) + full[n_masked:]


def chunk_texts(texts: list[str], tokenizer: Any, max_length: int) -> list[str]:
    """The documents as ``max_length``-token text chunks (open-unlearning's ``_chunk_raw_text``; empty chunks dropped)."""
    if max_length < 1:
        raise ConfigError(f"max_length must be positive, got {max_length}")
    ids = list(tokenizer("\n\n".join(texts), add_special_tokens=False)["input_ids"])
    chunks = [tokenizer.decode(ids[i : i + max_length]) for i in range(0, len(ids), max_length)]
    return [c for c in chunks if c]
