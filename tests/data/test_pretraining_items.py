"""MUSE pre-training-style items and training chunks as open-unlearning builds them, on hand-built token sequences."""

from __future__ import annotations

import pytest
from tokenizer_helpers import build_tokenizer

from baldro.data.muse import TextChunkDataset
from baldro.data.pretraining import IGNORE_INDEX, chunk_texts, pretraining_item

TEXT = "The capital of Australia is Canberra, and the Eiffel Tower is in Paris."


@pytest.fixture(scope="module")
def bos_tok():
    return build_tokenizer(add_bos=True)


@pytest.fixture(scope="module")
def gpt2_like():
    return build_tokenizer(add_bos=False)


def test_empty_prefix_item_is_bos_then_text_without_eos(bos_tok):
    text_ids = bos_tok(TEXT, add_special_tokens=False)["input_ids"]
    ids, labels = pretraining_item(bos_tok, "", TEXT, max_length=2048)
    assert ids == [bos_tok.bos_token_id, *text_ids]  # no EOS appended
    assert labels == [IGNORE_INDEX, *text_ids]


def test_cap_is_bos_plus_max_length_text_tokens(bos_tok):
    text_ids = bos_tok(TEXT, add_special_tokens=False)["input_ids"]
    ids, labels = pretraining_item(bos_tok, "", TEXT, max_length=5)
    assert ids == [bos_tok.bos_token_id, *text_ids[:5]]
    assert labels == [IGNORE_INDEX, *text_ids[:5]]


def test_prefix_is_masked_by_its_own_token_count(bos_tok):
    prefix = "The capital of"
    n_prefix = len(bos_tok(prefix)["input_ids"])  # BOS + prefix tokens
    ids, labels = pretraining_item(bos_tok, prefix, " Australia is Canberra", max_length=3)
    full = bos_tok(prefix + " Australia is Canberra")["input_ids"]
    assert ids == full[: n_prefix + 3]
    assert labels == [IGNORE_INDEX] * n_prefix + full[n_prefix : n_prefix + 3]


def test_no_bos_tokenizer_leaves_the_first_token_unlabelled(gpt2_like):
    text_ids = gpt2_like(TEXT, add_special_tokens=False)["input_ids"]
    ids, labels = pretraining_item(gpt2_like, "", TEXT, max_length=4)
    assert ids == text_ids[:4]
    assert labels == [IGNORE_INDEX, *text_ids[1:4]]


def test_training_chunks_are_retokenised_with_bos(bos_tok):
    docs = [TEXT, "He was born in a small town by the sea."]
    stream = bos_tok("\n\n".join(docs), add_special_tokens=False)["input_ids"]
    ds = TextChunkDataset.from_texts(docs, bos_tok, max_length=6)
    assert len(ds) == -(-len(stream) // 6)
    for k, item in enumerate(ds):
        chunk_text = bos_tok.decode(stream[6 * k : 6 * k + 6])
        assert item["input_ids"] == bos_tok(chunk_text)["input_ids"][:7]
        assert item["input_ids"][0] == bos_tok.bos_token_id
        assert item["labels"] == [IGNORE_INDEX, *item["input_ids"][1:]]
        assert bos_tok.eos_token_id not in item["input_ids"]


def test_stream_of_exact_multiple_has_no_empty_chunk(bos_tok):
    n = len(bos_tok(TEXT, add_special_tokens=False)["input_ids"])
    assert len(chunk_texts([TEXT], bos_tok, max_length=n)) == 1  # open-unlearning adds an empty second chunk


def test_training_chunks_fit_the_models_positions(bos_tok, tmp_path):
    import json
    from types import SimpleNamespace

    from baldro.data.from_config import text_dataset

    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "forget.json").write_text(json.dumps([TEXT * 3]))
    model = SimpleNamespace(config=SimpleNamespace(max_position_embeddings=8))
    with pytest.warns(UserWarning, match="max_position_embeddings=8: raw/forget is cut into 7-token chunks"):
        ds = text_dataset({"source": str(tmp_path), "max_length": 2048}, "forget", bos_tok, model)
    assert max(len(item["input_ids"]) for item in ds) <= 8
    assert len(text_dataset({"source": str(tmp_path), "max_length": 2048}, "forget", bos_tok)) == 1
