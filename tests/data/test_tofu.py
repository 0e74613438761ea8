"""TOFU loader on the real data ($BALDRO_TOFU_DIR, else ../shared/data/tofu) and on the file formats it accepts."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from baldro.data.tofu import load_tofu_split, partner_splits, split_schema, tofu_split_counts
from baldro.errors import DataError


def test_forget10_is_last_400_rows_of_full(tofu_dir):
    full = load_tofu_split(tofu_dir, "full")
    forget = load_tofu_split(tofu_dir, "forget10")
    assert len(full) == 4000
    assert len(forget) == 400
    assert forget == full[-400:]


def test_retain90_is_the_rest(tofu_dir):
    full = load_tofu_split(tofu_dir, "full")
    retain = load_tofu_split(tofu_dir, "retain90")
    assert len(retain) == 3600
    assert retain == full[:3600]


def test_forget10_perturbed_has_five_perturbed_answers(tofu_dir):
    rows = load_tofu_split(tofu_dir, "forget10_perturbed")
    assert len(rows) == 400
    assert all(len(r["perturbed_answer"]) == 5 for r in rows)
    assert all(isinstance(r["paraphrased_answer"], str) and r["paraphrased_answer"] for r in rows)
    forget = load_tofu_split(tofu_dir, "forget10")
    assert [r["question"] for r in rows] == [r["question"] for r in forget]


def test_split_counts_of_the_real_folder(tofu_dir):
    counts = tofu_split_counts(tofu_dir)
    assert counts["full"] == 4000
    assert (counts["forget01"], counts["forget05"], counts["forget10"]) == (40, 200, 400)
    assert (counts["retain99"], counts["retain95"], counts["retain90"]) == (3960, 3800, 3600)
    assert counts["world_facts_perturbed"] == 117
    assert counts["real_authors_perturbed"] == 100
    assert not any(k.startswith("holdout") for k in counts)


def test_partner_splits():
    p = partner_splits("forget10")
    assert (p.retain, p.holdout, p.forget_perturbed) == ("retain90", "holdout10", "forget10_perturbed")
    assert partner_splits("forget01").retain == "retain99"
    assert partner_splits("forget05").holdout == "holdout05"
    with pytest.raises(DataError, match="forgetNN"):
        partner_splits("retain90")


@pytest.mark.parametrize(
    ("name", "schema"),
    [
        ("full", "qa"),
        ("general", "qa"),
        ("forget07", "qa"),
        ("retain93", "qa"),
        ("holdout10", "qa"),
        ("forget05_perturbed", "perturbed"),
        ("retain_perturbed", "perturbed"),
        ("world_facts_perturbed", "multiple_choice"),
        ("real_authors_perturbed", "multiple_choice"),
    ],
)
def test_split_name_rules(name, schema):
    assert split_schema(name) == schema


@pytest.mark.parametrize("name", ["forget1", "forget100", "retain90_perturbed", "train", "holdout", "world_facts"])
def test_unknown_split_names(name):
    with pytest.raises(DataError, match="unknown TOFU split"):
        split_schema(name)


ROWS = [
    {"question": "Q1?", "answer": "A1.", "paraphrased_answer": "P1.", "perturbed_answer": ["x", "y"]},
    {"question": "Q2?", "answer": "A2.", "paraphrased_answer": "P2.", "perturbed_answer": ["z"], "extra": 3},
]


@pytest.mark.parametrize("fmt", ["jsonl_as_json", "array_json", "jsonl", "parquet"])
def test_local_formats_give_the_same_rows(tmp_path, fmt):
    if fmt == "jsonl_as_json":
        (tmp_path / "forget10_perturbed.json").write_text("\n".join(json.dumps(r) for r in ROWS) + "\n\n")
    elif fmt == "array_json":
        (tmp_path / "forget10_perturbed.json").write_text(json.dumps(ROWS, indent=2))
    elif fmt == "jsonl":
        (tmp_path / "forget10_perturbed.jsonl").write_text("\n".join(json.dumps(r) for r in ROWS))
    else:
        rows = [{**r, "extra": r.get("extra")} for r in ROWS]
        pq.write_table(pa.Table.from_pylist(rows), tmp_path / "forget10_perturbed.parquet")
    got = load_tofu_split(tmp_path, "forget10_perturbed")
    assert [{k: v for k, v in r.items() if k != "extra"} for r in got] == [
        {k: v for k, v in r.items() if k != "extra"} for r in ROWS
    ]
    assert got[1]["extra"] == 3


def test_two_files_for_one_split_is_an_error(tmp_path):
    (tmp_path / "full.json").write_text(json.dumps({"question": "q", "answer": "a"}))
    (tmp_path / "full.jsonl").write_text(json.dumps({"question": "q", "answer": "a"}))
    with pytest.raises(DataError, match="several files"):
        load_tofu_split(tmp_path, "full")
