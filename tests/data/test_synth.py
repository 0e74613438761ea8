"""The embedded benchmark: TOFU's split names and schema, determinism, author partition, perturbations, uniform mode."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from baldro.data.synth import build_splits, n_authors_for, write_benchmark
from baldro.data.synth.facts import FACT_TYPES, build_pools
from baldro.errors import ConfigError

NAME_Q = re.compile(r"^Where was (.+) born\?$")


def read(folder: Path, split: str) -> list[dict]:
    return [json.loads(line) for line in (folder / f"{split}.json").read_text().splitlines()]


def authors_of(rows: list[dict]) -> set[str]:
    """Author names, from the 'Where was X born?' questions (fact type 2, asked whenever questions >= 2)."""
    return {m.group(1) for r in rows if (m := NAME_Q.match(r["question"]))}


def test_same_split_files_and_fields_as_real_tofu(synth_dir: Path, tofu_dir: Path) -> None:
    tofu_files = sorted(p.name for p in tofu_dir.glob("*.json"))
    ours = sorted(p.name for p in synth_dir.glob("*.json"))
    assert set(tofu_files) <= set(ours)
    for name in tofu_files:
        with open(tofu_dir / name) as fh:
            tofu_keys = set(json.loads(fh.readline()))
        split = name.removesuffix(".json")
        assert all(set(r) == tofu_keys for r in read(synth_dir, split)), split


def test_extra_splits_have_qa_schema(synth_dir: Path) -> None:
    for split in ("holdout01", "holdout05", "holdout10", "general"):
        rows = read(synth_dir, split)
        assert rows and all(set(r) == {"question", "answer"} for r in rows), split
    meta = json.loads((synth_dir / "META.json").read_text())
    assert meta["rows"] == {p.stem: len(read(synth_dir, p.stem)) for p in synth_dir.glob("*.json") if p.stem != "META"}


def test_loader_reads_every_tofu_split(synth_dir: Path) -> None:
    from baldro.data.tofu import load_tofu_split

    for path in sorted(synth_dir.glob("*.json")):
        if path.stem != "META":
            assert load_tofu_split(synth_dir, path.stem) == read(synth_dir, path.stem)


def test_same_seed_byte_identical_other_seed_differs(tmp_path: Path) -> None:
    a = write_benchmark(tmp_path / "a", seed=3, authors=12, questions=4)
    b = write_benchmark(tmp_path / "b", seed=3, authors=12, questions=4)
    c = write_benchmark(tmp_path / "c", seed=4, authors=12, questions=4)
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir())
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert (a / "full.json").read_bytes() != (c / "full.json").read_bytes()
    assert (a / "forget10_perturbed.json").read_bytes() != (c / "forget10_perturbed.json").read_bytes()


@pytest.mark.parametrize(
    ("authors", "expected"), [(2, (1, 1, 1)), (7, (1, 1, 1)), (20, (1, 1, 2)), (50, (1, 3, 5)), (200, (2, 10, 20))]
)
def test_forget_sizes(authors: int, expected: tuple[int, int, int]) -> None:
    assert tuple(n_authors_for(p, authors) for p in (1, 5, 10)) == expected


def test_forget_is_last_authors_retain_the_rest_holdout_disjoint(synth_dir: Path) -> None:
    full = read(synth_dir, "full")
    order = []
    for r in full:
        m = NAME_Q.match(r["question"])
        if m and m.group(1) not in order:
            order.append(m.group(1))
    meta = json.loads((synth_dir / "META.json").read_text())
    assert len(order) == meta["authors"]
    holdout = authors_of(read(synth_dir, "holdout10"))
    assert holdout and not holdout & set(order)
    for pct, keep in ((1, 99), (5, 95), (10, 90)):
        n = meta["forget_authors"][f"forget{pct:02d}"]
        forget = read(synth_dir, f"forget{pct:02d}")
        retain = read(synth_dir, f"retain{keep}")
        assert authors_of(forget) == set(order[-n:])
        assert authors_of(retain) == set(order[:-n])
        assert len(forget) == n * meta["questions"]
        assert [(r["question"], r["answer"]) for r in read(synth_dir, f"forget{pct:02d}_perturbed")] == [
            (r["question"], r["answer"]) for r in forget
        ]
        # every training row is in full; full = retain rows + the forget authors' rows (with their extra copies)
        assert retain == full[: len(retain)]
        tail = full[len(retain) :]
        assert all(r in tail for r in forget)
        forget_names = set(order[-n:])
        assert not any(name in r["question"] + r["answer"] for r in retain for name in forget_names)
        h = read(synth_dir, f"holdout{pct:02d}")
        assert len(h) == n * meta["questions"] and authors_of(h) <= holdout
    retain_p = read(synth_dir, "retain_perturbed")
    assert authors_of(retain_p) == set(order[: meta["forget_authors"]["forget10"]])


def test_perturbed_answers_swap_only_the_value(synth_dir: Path) -> None:
    pools = build_pools()
    values = {v.lower() for f in FACT_TYPES for v in pools[f.pool]}
    rows = read(synth_dir, "forget10_perturbed") + read(synth_dir, "retain_perturbed")
    for r in rows:
        assert len(r["perturbed_answer"]) == 5 and len(set(r["perturbed_answer"])) == 5
        assert r["answer"] not in r["perturbed_answer"] and r["paraphrased_answer"] not in r["perturbed_answer"]
        assert r["paraphrased_answer"] != r["answer"] and r["paraphrased_question"] != r["question"]
        para = r["paraphrased_answer"]
        for wrong in r["perturbed_answer"]:
            # same phrasing: one contiguous span differs, and both spans are values of the pools
            i = 0
            while i < min(len(para), len(wrong)) and para[i] == wrong[i]:
                i += 1
            j = 0
            while j < min(len(para), len(wrong)) - i and para[-1 - j] == wrong[-1 - j]:
                j += 1
            span_true, span_wrong = para[i : len(para) - j].lower(), wrong[i : len(wrong) - j].lower()
            assert any(span_true in v for v in values) and any(span_wrong in v for v in values), (para, wrong)


def test_general_knowledge_splits(synth_dir: Path) -> None:
    general = {(r["question"], r["answer"]) for r in read(synth_dir, "general")}
    for split in ("real_authors_perturbed", "world_facts_perturbed"):
        rows = read(synth_dir, split)
        assert len(rows) >= 20
        for r in rows:
            assert (r["question"], r["answer"]) in general
            assert len(r["perturbed_answer"]) == 3 and r["answer"] not in r["perturbed_answer"]


def _answers_by_fact(splits: dict[str, list[dict]], questions: int) -> dict[int, list[str]]:
    """Canonical answers per fact index, author name removed (forgetNN rows come in author blocks of Q facts)."""
    rows = splits["retain_perturbed"] + splits["forget10_perturbed"]
    out: dict[int, list[str]] = {}
    for start in range(0, len(rows), questions):
        block = rows[start : start + questions]
        name = NAME_Q.match(block[1]["question"]).group(1)
        for k, r in enumerate(block):
            out.setdefault(k, []).append(r["answer"].replace(name, "NAME"))
    return out


def test_designed_heterogeneity_and_uniform_switch() -> None:
    q = 10
    splits, meta = build_splits(seed=0, authors=50, questions=q, uniform=False)
    assert len(splits["full"]) > 50 * q  # extra copies of forget facts
    assert sum(r["copies"] for r in meta["forget10_rows"]) == len(splits["full"]) - 50 * q
    assert max(r["value_shared_by"] for r in meta["forget10_rows"]) >= 3
    lengths = {k: {len(a.split()) for a in answers} for k, answers in _answers_by_fact(splits, q).items()}
    assert max(len(v) for v in lengths.values()) >= 3  # several phrasings of one fact, short to long

    splits_u, meta_u = build_splits(seed=0, authors=50, questions=q, uniform=True)
    assert len(splits_u["full"]) == 50 * q
    assert all(r["copies"] == 0 and r["value_shared_by"] == 1 for r in meta_u["forget10_rows"])
    for k, answers in _answers_by_fact(splits_u, q).items():
        assert k == 0 or len(set(answers)) == len(answers), f"fact {k}: a value is shared in uniform mode"
        words = [len(a.split()) for a in answers]
        assert max(words) - min(words) <= 2, f"fact {k}: one phrasing, lengths differ only by the value"


def test_bad_sizes_raise_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--authors"):
        write_benchmark(tmp_path / "x", authors=1)
    with pytest.raises(ConfigError, match="--questions"):
        write_benchmark(tmp_path / "x", questions=len(FACT_TYPES) + 1)
    with pytest.raises(ConfigError, match="fewer --authors"):
        build_splits(seed=0, authors=400, questions=3, uniform=True)
