"""MUSE loader on a small folder written by the test, and chunking of raw text."""

from __future__ import annotations

import json

import pytest

from baldro.cli.main import main
from baldro.data.collate import QACollator
from baldro.data.muse import MUSE_LAYOUT, TextChunkDataset, chunk_texts, load_muse, muse_split_counts
from baldro.errors import DataError

DOCS = [
    "The capital of Australia is Canberra, and the Eiffel Tower is in Paris.",
    "Who wrote the novel about the river? She wrote it in 1991 after a long journey.",
    "He was born in a small town by the sea.",
]


@pytest.fixture
def muse_dir(tmp_path):
    """A miniature MUSE folder mixing the accepted encodings: JSON list of strings, rows with text, JSON Lines, .txt."""
    root = tmp_path / "muse"
    for sub in MUSE_LAYOUT:
        (root / sub).mkdir(parents=True)
    (root / "raw" / "forget.json").write_text(json.dumps(DOCS))
    (root / "raw" / "retain1.jsonl").write_text("\n".join(json.dumps({"text": d}) for d in DOCS[:2]))
    (root / "raw" / "retain2.txt").write_text(DOCS[2])
    (root / "raw" / "holdout.json").write_text(json.dumps([{"text": DOCS[0]}]))
    qa = [{"question": "Where is the Eiffel Tower?", "answer": "Paris"}, {"question": "Capital?", "answer": "Canberra"}]
    for split in MUSE_LAYOUT["knowmem"]:
        (root / "knowmem" / f"{split}.json").write_text(json.dumps(qa))
    (root / "verbmem" / "forget.jsonl").write_text(json.dumps({"prompt": "The capital of", "gt": " Australia is"}))
    for split in MUSE_LAYOUT["privleak"]:
        (root / "privleak" / f"{split}.json").write_text(json.dumps(DOCS[:1]))
    return root


def test_load_every_split(muse_dir):
    assert [r["text"] for r in load_muse(muse_dir, "raw", "forget")] == DOCS
    assert [r["text"] for r in load_muse(muse_dir, "raw", "retain1")] == DOCS[:2]
    assert [r["text"] for r in load_muse(muse_dir, "raw", "retain2")] == DOCS[2:]
    assert load_muse(muse_dir, "knowmem", "forget_qa")[0] == {
        "question": "Where is the Eiffel Tower?",
        "answer": "Paris",
    }
    assert load_muse(muse_dir, "verbmem", "forget") == [{"prompt": "The capital of", "gt": " Australia is"}]
    counts = muse_split_counts(muse_dir)
    assert counts == {
        "raw/forget": 3,
        "raw/retain1": 2,
        "raw/retain2": 1,
        "raw/holdout": 1,
        **{f"knowmem/{s}": 2 for s in MUSE_LAYOUT["knowmem"]},
        "verbmem/forget": 1,
        **{f"privleak/{s}": 1 for s in MUSE_LAYOUT["privleak"]},
    }


def test_cli_inspect_detects_muse(muse_dir, capsys):
    assert main(["data", "inspect", str(muse_dir)]) == 0
    assert json.loads(capsys.readouterr().out)["raw/forget"] == 3


def test_bad_muse_rows(muse_dir, capsys):
    (muse_dir / "verbmem" / "forget.jsonl").write_text(json.dumps({"prompt": "x"}))
    with pytest.raises(DataError, match=r"verbmem/forget.jsonl: line 1: missing field 'gt'"):
        load_muse(muse_dir, "verbmem", "forget")
    assert main(["data", "inspect", str(muse_dir)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "missing field 'gt'" in err
    with pytest.raises(DataError, match="unknown MUSE split 'raw/retain3'"):
        load_muse(muse_dir, "raw", "retain3")
    (muse_dir / "raw" / "forget.json").unlink()
    with pytest.raises(DataError, match="no file for MUSE split 'raw/forget'"):
        load_muse(muse_dir, "raw", "forget")


@pytest.mark.parametrize("max_length", [1, 7, 16, 10_000])
def test_chunking_covers_the_stream(plain_tokenizer, max_length):
    """open-unlearning's _chunk_raw_text: documents joined with "\n\n", cut every max_length tokens, decoded."""
    chunks = chunk_texts(DOCS, plain_tokenizer, max_length=max_length)
    stream = plain_tokenizer("\n\n".join(DOCS), add_special_tokens=False)["input_ids"]
    expected = [stream[i : i + max_length] for i in range(0, len(stream), max_length)]
    assert chunks == [plain_tokenizer.decode(c) for c in expected]
    assert "".join(chunks) == "\n\n".join(DOCS)


def test_text_chunk_dataset_collates(plain_tokenizer):
    ds = TextChunkDataset.from_texts(DOCS, plain_tokenizer, max_length=16)
    batch = QACollator(plain_tokenizer)([ds[i] for i in range(len(ds))])
    assert batch["index"].tolist() == list(range(len(ds)))
    mask = batch["attention_mask"].bool()
    mask[:, 0] = False  # the first position is never labelled (nothing predicts it)
    assert (batch["labels"][mask] == batch["input_ids"][mask]).all()
    assert (batch["labels"][~mask] == -100).all()
