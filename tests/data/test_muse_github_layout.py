"""MUSE files as the MUSE authors publish them on GitHub (data/<corpus>/{raw,knowmem,verbmem,privleak}), hand-made."""

from __future__ import annotations

import json
import warnings

import pytest

from baldro.cli.main import main
from baldro.data.muse import load_muse, muse_split_counts
from baldro.errors import DataError

DOCS = ["First article about the election.", "", "Second article about the storm."]
QA = [{"question": "Who won?", "answer": "The mayor."}, {"question": "When?", "answer": "In May."}]


@pytest.fixture
def bbc(tmp_path):
    root = tmp_path / "data" / "bbc"
    files = {
        "raw/forget.json": json.dumps(DOCS),
        "raw/forget.txt": "\n\n".join(DOCS),
        "raw/retain2.json": json.dumps(DOCS[2:]),
        "raw/retain2.txt": DOCS[2],
        "knowmem/forget_qa.json": json.dumps(QA),
        "knowmem/forget_qa_icl.json": json.dumps(QA[:1]),
        "knowmem/retain2_qa.json": json.dumps(QA[::-1]),
        "knowmem/retain2_qa_icl.json": json.dumps(QA[1:]),
        "verbmem/forget.json": json.dumps([{"prompt": "The election", "gt": " was won by the mayor."}]),
        "privleak/forget.json": json.dumps(DOCS[:1]),
        "privleak/retain2.json": json.dumps(DOCS[2:]),
        "privleak/holdout.json": json.dumps(["Held-out article."]),
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_json_is_preferred_over_txt_and_named(bbc):
    with pytest.warns(UserWarning) as caught:
        rows = load_muse(bbc, "raw", "forget")
    messages = [str(w.message) for w in caught]
    assert any("using forget.json (not forget.txt)" in m for m in messages)
    assert [r["text"] for r in rows] == [DOCS[0], DOCS[2]]


def test_empty_documents_are_skipped_with_one_warning(bbc):
    with pytest.warns(UserWarning) as caught:
        load_muse(bbc, "raw", "forget")
    empty = [str(w.message) for w in caught if "empty document" in str(w.message)]
    assert len(empty) == 1 and "skipped 1 empty document(s) (row 2)" in empty[0]
    (bbc / "privleak" / "holdout.json").write_text(json.dumps(["", " "]))
    with pytest.raises(DataError, match="every document is empty"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        load_muse(bbc, "privleak", "holdout")


def test_github_retain_names_stand_for_the_hub_names(bbc):
    assert load_muse(bbc, "knowmem", "retain_qa") == QA[::-1]
    assert load_muse(bbc, "knowmem", "retain_qa_icl") == QA[1:]
    assert [r["text"] for r in load_muse(bbc, "privleak", "retain")] == DOCS[2:]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        counts = muse_split_counts(bbc)
    assert counts["knowmem/retain_qa"] == 2 and counts["privleak/retain"] == 1 and counts["raw/forget"] == 2


def test_retain_knowmem_is_found_by_the_evaluator(bbc):
    from baldro.evaluation.muse import _try_load

    assert _try_load(bbc, "knowmem", "retain_qa", None) == QA[::-1]
    assert _try_load(bbc, "knowmem", "retain_qa_icl", None) == QA[1:]


def test_both_namings_at_once_are_ambiguous(bbc):
    (bbc / "knowmem" / "retain_qa.json").write_text(json.dumps(QA))
    with pytest.raises(DataError, match=r"several files \(retain_qa.json, retain2_qa.json\)"):
        load_muse(bbc, "knowmem", "retain_qa")


def test_inspect_one_split_does_not_read_the_others(bbc, capsys):
    (bbc / "privleak" / "holdout.json").write_text("{not json")
    assert main(["data", "inspect", str(bbc), "--split", "knowmem/forget_qa"]) == 0
    assert json.loads(capsys.readouterr().out) == {"knowmem/forget_qa": 2}
    assert main(["data", "inspect", str(bbc), "--split", "privleak/holdout"]) == 2
    assert "privleak/holdout.json" in capsys.readouterr().err
    assert main(["data", "inspect", str(bbc), "--split", "knowmem/nope"]) == 2
    assert "unknown MUSE split 'knowmem/nope'" in capsys.readouterr().err
