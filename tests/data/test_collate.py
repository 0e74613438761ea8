"""Datasets and collators: padding sides, indices, the truncation warning, per-rank retain draws."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from baldro.data.collate import QACollator, QADataset, UnlearnCollator, UnlearnDataset
from baldro.data.formatting import IGNORE_INDEX, PromptFormat, encode_qa
from baldro.data.refusals import REFUSALS, idk_rows
from baldro.errors import ConfigError, DataError

ROWS = [
    {"question": "Who wrote it?", "answer": "She did."},
    {"question": "Where was he born?", "answer": "He was born in a small town by the sea."},
    {"question": "What is the capital of Australia?", "answer": "Canberra."},
]


def make(tokenizer, rows=ROWS, max_length=128):
    return QADataset(rows, tokenizer, PromptFormat.preset("plain"), max_length)


def test_items_carry_row_index_and_encoding(plain_tokenizer):
    ds = make(plain_tokenizer)
    fmt = PromptFormat.preset("plain")
    for i, row in enumerate(ROWS):
        item = ds[i]
        assert item["index"] == i
        assert {k: item[k] for k in ("input_ids", "attention_mask", "labels")} == encode_qa(
            plain_tokenizer, row["question"], row["answer"], fmt, 128
        )


@pytest.mark.parametrize("side", ["right", "left"])
def test_padding_sides(plain_tokenizer, side):
    ds = make(plain_tokenizer)
    items = [ds[2], ds[0], ds[1]]
    batch = QACollator(plain_tokenizer, padding_side=side)(items)
    width = max(len(it["input_ids"]) for it in items)
    assert batch["input_ids"].shape == batch["labels"].shape == batch["attention_mask"].shape == (3, width)
    assert batch["index"].tolist() == [2, 0, 1]
    assert batch["index"].dtype == torch.long
    for row, it in enumerate(items):
        n = len(it["input_ids"])
        keep = slice(width - n, width) if side == "left" else slice(0, n)
        pad = slice(0, width - n) if side == "left" else slice(n, width)
        assert batch["input_ids"][row, keep].tolist() == it["input_ids"]
        assert batch["labels"][row, keep].tolist() == it["labels"]
        assert batch["attention_mask"][row].sum().item() == n
        assert (batch["attention_mask"][row, pad] == 0).all()
        assert (batch["labels"][row, pad] == IGNORE_INDEX).all()
        assert (batch["input_ids"][row, pad] == plain_tokenizer.pad_token_id).all()


def test_bad_padding_side(plain_tokenizer):
    with pytest.raises(ConfigError, match="padding_side"):
        QACollator(plain_tokenizer, padding_side="middle")


def test_truncation_warns_once_with_row_count(plain_tokenizer):
    long_answer = "He was born in a small town by the sea. " * 10
    rows = [*ROWS, {"question": "Q?", "answer": long_answer}, {"question": "Q2?", "answer": long_answer}]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = QADataset(rows, plain_tokenizer, PromptFormat.preset("plain", tokenise="separate"), 24)
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert len(messages) == 1
    assert "2 of 5 rows" in messages[0]  # separate: prompts shortened first, only the two long answers cut
    assert ds.n_answer_truncated == 2
    assert all(len(it["input_ids"]) <= 24 for it in ds)


def test_joint_items_are_cut_by_the_tokenizer_then_end_with_eos(plain_tokenizer):
    """open-unlearning: tokenizer(prompt + answer, truncation=True, max_length=24), then EOS appended: 25 tokens."""
    long_answer = "He was born in a small town by the sea. " * 10
    rows = [*ROWS, {"question": "Q?", "answer": long_answer}, {"question": "Q2?", "answer": long_answer}]
    texts = [f"Question: {r['question']}\nAnswer: {r['answer']}" for r in rows]
    n_long = sum(len(plain_tokenizer(t)["input_ids"]) > 24 for t in texts)
    assert n_long >= 2
    with pytest.warns(UserWarning, match=f"{n_long} of 5 rows"):
        ds = make(plain_tokenizer, rows, max_length=24)
    assert ds.n_answer_truncated == n_long
    eos = plain_tokenizer.eos_token_id
    for it, text in zip(ds, texts):
        whole = plain_tokenizer(text)["input_ids"]
        assert it["input_ids"] == whole[:24] + [eos] if len(whole) > 24 else it["input_ids"] == [*whole, eos]


def test_no_warning_when_nothing_is_truncated(plain_tokenizer):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make(plain_tokenizer)


def test_mistyped_answer_names_the_row(plain_tokenizer):
    with pytest.raises(DataError, match="row 1: field 'answer' must be a string"):
        QADataset([ROWS[0], {"question": "q", "answer": ["a"]}], plain_tokenizer, name="forget10")


def retain_draws(forget, retain, seed=0, epoch=0, indices=None):
    ds = UnlearnDataset(forget, retain, seed=seed)
    ds.set_epoch(epoch)
    return [ds[i]["retain"]["index"] for i in (range(len(ds)) if indices is None else indices)]


def test_retain_draws_are_deterministic_per_seed_and_epoch(plain_tokenizer):
    retain_rows = [{"question": f"Question {k}?", "answer": f"Answer {k}."} for k in range(50)]
    forget = make(plain_tokenizer, ROWS * 10)
    retain = make(plain_tokenizer, retain_rows)
    r0 = retain_draws(forget, retain)
    assert r0 == retain_draws(forget, retain)
    assert r0 != retain_draws(forget, retain, epoch=1)
    assert r0 != retain_draws(forget, retain, seed=1)
    assert len(set(r0)) > 10
    # the one-process draws of earlier versions (generator seeded by [seed, rank 0, epoch, index]) are kept
    assert r0 == [int(np.random.default_rng([0, 0, 0, i]).integers(50)) for i in range(len(forget))]


def test_retain_draws_follow_the_global_index_not_the_process(plain_tokenizer, monkeypatch):
    """Two processes that each draw half the indices pair them with the rows one process draws."""
    forget = make(plain_tokenizer, ROWS * 10)
    retain = make(plain_tokenizer, [{"question": f"Q{k}?", "answer": f"A{k}."} for k in range(50)])
    one = retain_draws(forget, retain)
    halves = {}
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))
        halves[rank] = retain_draws(forget, retain, indices=range(rank, len(forget), 2))
    assert one[0::2] == halves[0] and one[1::2] == halves[1]


def test_unlearn_dataset_and_collator(plain_tokenizer):
    forget = make(plain_tokenizer)
    retain = make(plain_tokenizer, [{"question": f"Q{k}?", "answer": f"A{k}."} for k in range(7)])
    idk = make(plain_tokenizer, idk_rows(ROWS, seed=0))
    ds = UnlearnDataset(forget, retain, idk, seed=0)
    assert len(ds) == len(forget)
    items = [ds[i] for i in range(len(ds))]
    assert all(set(it) == {"forget", "retain", "idk"} for it in items)
    batch = UnlearnCollator(plain_tokenizer)(items)
    assert set(batch) == {"forget", "retain", "idk"}
    assert batch["forget"]["index"].tolist() == [0, 1, 2]
    assert batch["idk"]["index"].tolist() == [0, 1, 2]
    assert batch["retain"]["index"].tolist() == [ds.retain_index(i) for i in range(3)]
    only_forget = UnlearnCollator(plain_tokenizer)([UnlearnDataset(forget, None)[0]])
    assert set(only_forget) == {"forget"}


def test_idk_rows_use_refusals_and_keep_questions():
    rows = idk_rows(ROWS, seed=1)
    assert [r["question"] for r in rows] == [r["question"] for r in ROWS]
    assert all(r["answer"] in REFUSALS for r in rows)
    assert rows == idk_rows(ROWS, seed=1)


def test_misaligned_idk_and_empty_sets(plain_tokenizer):
    forget = make(plain_tokenizer)
    with pytest.raises(ConfigError, match="align"):
        UnlearnDataset(forget, None, make(plain_tokenizer, ROWS[:2]))
    with pytest.raises(DataError, match="retain set is empty"):
        UnlearnDataset(forget, make(plain_tokenizer, []))
