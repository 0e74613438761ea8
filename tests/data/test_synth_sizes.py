"""Named benchmark sizes: ``demo`` (unchanged default) and ``study`` (≥ 100 forget items, same heterogeneity)."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import pytest

from baldro.cli.main import main
from baldro.data.synth import SIZES, build_splits, size_preset, write_benchmark
from baldro.errors import ConfigError

# sha256 over (name, bytes) of every file `write_benchmark(dir)` wrote before named sizes existed (commit bffff61):
# the demo's benchmark, hence its tokenizer and every demo number, must not move.
DEMO_DIGEST = {False: "6c01dc834ce05be49ddbcf6125cbe2e9c15121e9045d4aa0662acc9abad3e922",
               True: "b281c01493ea399f09217505071c60c211f67d53edccbd5e37cc66344eee9085"}


def digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.iterdir()):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


@pytest.mark.parametrize("uniform", [False, True])
def test_default_benchmark_is_byte_identical_to_before_sizes(tmp_path: Path, uniform: bool) -> None:
    assert digest(write_benchmark(tmp_path / "d", uniform=uniform)) == DEMO_DIGEST[uniform]
    assert SIZES["demo"] == (40, 8, (1, 5, 10)) and SIZES["demo"].forget_split == "forget10"


def test_study_size_has_at_least_100_forget_items_and_the_designed_heterogeneity() -> None:
    size = size_preset("study")
    forget = size.forget_split
    splits, meta = build_splits(0, size.authors, size.questions, False, size.percents)
    rows = meta[f"{forget}_rows"]
    assert len(splits[forget]) == len(splits[f"{forget}_perturbed"]) == len(rows) >= 100
    retain = f"retain{100 - max(size.percents)}"
    assert len(splits[retain]) + len(splits[forget]) + sum(r["copies"] for r in rows) == len(splits["full"])
    assert len(splits[f"holdout{max(size.percents)}"]) == len(splits["retain_perturbed"]) == len(rows)
    assert len(splits["forget10"]) < len(rows)  # the smaller forget splits are still written
    copies = Counter(r["copies"] for r in rows)
    assert set(copies) == {0, 2, 3} and 0.2 < (copies[2] + copies[3]) / len(rows) < 0.5  # ~ a third copied
    assert max(r["value_shared_by"] for r in rows) >= 10  # Zipf-shared values
    words = [r["answer_words"] for r in rows]
    assert min(words) <= 3 and max(words) >= 15  # bare value ... long sentence


def test_study_size_uniform_variant_has_no_designed_heterogeneity() -> None:
    size = size_preset("study")
    splits, meta = build_splits(0, size.authors, size.questions, True, size.percents)
    assert len(splits[size.forget_split]) >= 100
    assert len(splits["full"]) == size.authors * size.questions
    assert all(r["copies"] == 0 and r["value_shared_by"] == 1 for r in meta[f"{size.forget_split}_rows"])


def test_cli_size_study_is_deterministic_and_overridable(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    for name in ("a", "b"):
        assert main(["data", "synth", "--size", "study", "--out", str(tmp_path / name)]) == 0
    rows = json.loads(capsys.readouterr().out.split("\n}\n")[0] + "\n}")["rows"]
    assert rows[SIZES["study"].forget_split] == 100
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert main(["data", "synth", "--size", "study", "--authors", "20", "--out", str(tmp_path / "c")]) == 0
    meta = json.loads((tmp_path / "c" / "META.json").read_text())
    assert (meta["authors"], meta["questions"], meta["forget_authors"]["forget25"]) == (20, 10, 5)


def test_bad_forget_percentages_raise_config_error() -> None:
    for bad in ((), (10, 10), (0, 10), (60,)):
        with pytest.raises(ConfigError, match="forget percentages"):
            build_splits(0, 20, 2, False, bad)


def test_unknown_size_is_one_clear_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(ConfigError, match="use one of demo, study"):
        size_preset("huge")
    assert main(["data", "synth", "--size", "huge", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "--size='huge'" in err and "demo, study" in err
    assert not (tmp_path / "x").exists()


def test_own_forget_values_keep_forget_and_holdout_values_away_from_retain_authors() -> None:
    import random

    from baldro.data.synth.authors import draw_authors
    from baldro.data.synth.facts import FACT_TYPES, build_pools

    people = draw_authors(random.Random(0), 50, False, own_from=30)
    pools = build_pools()
    for name in pools:
        keys = [f.key for f in FACT_TYPES if f.pool == name]
        retain = {p[k] for p in people[:30] for k in keys}
        own = {p[k] for p in people[30:] for k in keys}
        assert not retain & own, name
    genres = Counter(p["genre"] for p in people[30:])
    assert genres.most_common(1)[0][1] >= 3  # still Zipf-shared among the forget / holdout authors
    # without own_from the forget authors would share the retain authors' frequent values
    plain = draw_authors(random.Random(0), 50, False)
    assert {p["genre"] for p in plain[:30]} & {p["genre"] for p in plain[30:]}


def test_own_forget_values_perturbed_answers_avoid_retain_values() -> None:
    import random

    from baldro.data.synth.authors import draw_authors
    from baldro.data.synth.facts import FACT_TYPES

    size = size_preset("study")
    forget, n = size.forget_split, 10  # forget25 of 40 authors = the last 10; 10 holdout authors follow
    hits = {}
    for own in (True, False):
        splits, meta = build_splits(0, size.authors, size.questions, False, size.percents, own_forget_values=own)
        assert len(splits[forget]) == 100 and meta.get("own_forget_values", False) is own
        people = draw_authors(random.Random("baldro-synth:0:authors"), size.authors + n, False,
                              size.authors - n if own else None)  # the generator's own draw, replayed
        rows = iter(splits[f"{forget}_perturbed"])
        hits[own] = 0
        for author in people[size.authors - n : size.authors]:
            for fact in FACT_TYPES[: size.questions]:
                row = next(rows)
                retain_values = {p[f.key] for p in people[: size.authors - n] for f in FACT_TYPES if f.pool == fact.pool}
                para = row["paraphrased_answer"].lower()
                assert author[fact.key].lower() in para
                swapped = {para.replace(author[fact.key].lower(), v.lower()) for v in retain_values}
                hits[own] += len(swapped & {a.lower() for a in row["perturbed_answer"]})
    assert hits[True] == 0 and hits[False] > 0


def test_cli_own_forget_values_flag(tmp_path: Path) -> None:
    assert main(["data", "synth", "--size", "demo", "--own-forget-values", "--out", str(tmp_path / "o")]) == 0
    assert main(["data", "synth", "--size", "demo", "--out", str(tmp_path / "p")]) == 0
    assert json.loads((tmp_path / "o" / "META.json").read_text())["own_forget_values"] is True
    assert "own_forget_values" not in json.loads((tmp_path / "p" / "META.json").read_text())
    assert (tmp_path / "o" / "forget10.json").read_bytes() != (tmp_path / "p" / "forget10.json").read_bytes()


def test_close_paraphrase_is_one_phrasing_step_from_the_answer() -> None:
    import random

    from baldro.data.synth.authors import draw_authors
    from baldro.data.synth.facts import FACT_TYPES, build_pools
    from baldro.data.synth.rows import make_fact_row

    pools = build_pools()
    author = draw_authors(random.Random(1), 1, False)[0]
    rng = random.Random(2)
    gaps = {True: set(), False: set()}
    for close in (True, False):
        for fact in FACT_TYPES:
            index = {v: i for i, v in enumerate(pools[fact.pool])}
            said = [t.format(**author, value=author[fact.key]) for t in fact.answers]
            said = [s[0].upper() + s[1:] for s in said]
            for _ in range(20):
                row = make_fact_row(fact, author, rng, pools[fact.pool], index, False, 0, close_paraphrase=close)
                gaps[close].add(abs(said.index(row.answer) - said.index(row.paraphrased_answer)))
    assert gaps[True] == {1} and gaps[False] == {1, 2, 3}


def test_size_study_own_turns_own_forget_values_on_and_study_stays_as_it_was(tmp_path: Path) -> None:
    from baldro.experiments.study import STUDY_SETTINGS

    assert main(["data", "synth", "--size", "study-own", "--out", str(tmp_path / "own")]) == 0
    assert main(["data", "synth", "--size", "study", "--out", str(tmp_path / "s")]) == 0
    assert json.loads((tmp_path / "own" / "META.json").read_text())["own_forget_values"] is True
    assert "own_forget_values" not in json.loads((tmp_path / "s" / "META.json").read_text())
    assert SIZES["study-own"] == SIZES["study"]
    assert not STUDY_SETTINGS.own_forget_values  # the study's default benchmark is unchanged


# sha256 (as `digest`) of `--size study` (False, True = --uniform) and of `study-own`, computed on commit 32a3e09,
# before own phrasings existed: the option must not move these benchmarks (their tokenizers, every number measured).
STUDY_DIGEST = {False: "b0be6bfc1eb7589ceb72f59cceec302f7ed5fbb5e8336923caa9fab16aa0867b",
                True: "2e171a7474995ce7ac7f76593942268b5ea5bd82c046121996b99a8b05f8833e",
                "own": "470e2b99bd5741033e18aaec81dd2d06e3d7c20ccf70ab25e6734fc6e8c546ae"}


def test_study_and_study_own_bytes_are_unchanged_by_the_own_phrasings_option(tmp_path: Path) -> None:
    s = SIZES["study"]
    for uniform in (False, True):
        out = write_benchmark(tmp_path / f"u{uniform}", authors=s.authors, questions=s.questions, uniform=uniform,
                              percents=s.percents)
        assert digest(out) == STUDY_DIGEST[uniform]
    out = write_benchmark(tmp_path / "own", authors=s.authors, questions=s.questions, percents=s.percents,
                          own_forget_values=True)
    assert digest(out) == STUDY_DIGEST["own"]


def _rendered(templates: tuple[str, ...], author: dict[str, str], value: str) -> set[str]:
    out = set()
    for t in templates:
        text = t.format(**author, value=value)
        out.add(text[0].upper() + text[1:])
    return out


def test_own_phrasings_forget_answers_use_templates_no_retain_row_uses() -> None:
    import random

    from baldro.data.synth.authors import draw_authors
    from baldro.data.synth.facts import FACT_TYPES
    from baldro.data.synth.own_phrasings import OWN_ANSWERS

    size = size_preset("study")
    n = 10  # forget25 = the last 10 of 40 authors; 10 holdout authors follow
    splits, meta = build_splits(0, size.authors, size.questions, False, size.percents, own_forget_values=True,
                                own_phrasings=True)
    assert meta["own_phrasings"] is True and meta["own_forget_values"] is True
    people = draw_authors(random.Random("baldro-synth:0:authors"), size.authors + n, False, size.authors - n)
    facts = FACT_TYPES[: size.questions]
    forget_rows = iter(splits["forget25_perturbed"])
    holdout_rows = iter(splits["holdout25"])
    for author in people[size.authors - n : size.authors]:
        for fact in facts:
            row = next(forget_rows)
            own = _rendered(OWN_ANSWERS[fact.key], author, author[fact.key])
            shared = _rendered(fact.answers, author, author[fact.key])
            assert row["answer"] in own and row["paraphrased_answer"] in own and row["answer"] not in shared
            (template,) = [t for t in OWN_ANSWERS[fact.key]
                           if _rendered((t,), author, author[fact.key]) == {row["paraphrased_answer"]}]
            prefix, suffix = next(iter(_rendered((template,), author, "\x00"))).split("\x00")
            for wrong in row["perturbed_answer"]:  # the paraphrase's own template with another value
                assert wrong.startswith(prefix) and wrong.endswith(suffix) and wrong != row["paraphrased_answer"]
    for author in people[size.authors :]:
        for fact in facts:
            assert next(holdout_rows)["answer"] in _rendered(OWN_ANSWERS[fact.key], author, author[fact.key])
    # every retain row is phrased with the shared templates only
    retain_rows = iter(splits["retain_perturbed"])
    for author in people[:n]:
        for fact in facts:
            row = next(retain_rows)
            shared = _rendered(fact.answers, author, author[fact.key])
            assert row["answer"] in shared and row["paraphrased_answer"] in shared


def test_own_phrasings_touch_only_forget_and_holdout_rows_and_keep_the_heterogeneity() -> None:
    size = size_preset("study")
    base, meta0 = build_splits(0, size.authors, size.questions, False, size.percents, own_forget_values=True)
    own, meta = build_splits(0, size.authors, size.questions, False, size.percents, own_forget_values=True,
                             own_phrasings=True)
    for name in ("retain75", "retain_perturbed", "general", "real_authors_perturbed", "world_facts_perturbed"):
        assert own[name] == base[name], name
    changed = sum(a["answer"] != b["answer"] for a, b in zip(own["forget25"], base["forget25"]))
    assert changed >= 95  # (a bare "{value}." can never stay: no own template is the bare value)
    assert [q["question"] for q in own["forget25"]] == [q["question"] for q in base["forget25"]]
    rows, rows0 = meta["forget25_rows"], meta0["forget25_rows"]
    # same copies and value sharing (same random draws), answer lengths still from a bare phrase to a long sentence
    assert [(r["copies"], r["value_shared_by"]) for r in rows] == [(r["copies"], r["value_shared_by"]) for r in rows0]
    words = [r["answer_words"] for r in rows]
    assert min(words) <= 4 and max(words) >= 15
    assert len(own["full"]) == len(base["full"])


def test_own_phrasings_templates_are_ordered_short_to_long_and_distinct_from_the_shared_ones() -> None:
    from baldro.data.synth.facts import FACT_TYPES
    from baldro.data.synth.own_phrasings import OWN_ANSWERS

    shared = {t for f in FACT_TYPES for t in f.answers}
    assert set(OWN_ANSWERS) == {f.key for f in FACT_TYPES}
    for fact in FACT_TYPES:
        own = OWN_ANSWERS[fact.key]
        assert len(own) == len(fact.answers) and not set(own) & shared
        lengths = [len(t.split()) for t in own]
        assert lengths == sorted(lengths) and lengths[0] < lengths[-1], fact.key
        assert all("{value}" in t for t in own)


def test_cli_own_phrasings_flag_and_uniform_ignores_it(tmp_path: Path) -> None:
    assert main(["data", "synth", "--size", "study-own", "--own-phrasings", "--out", str(tmp_path / "o")]) == 0
    meta = json.loads((tmp_path / "o" / "META.json").read_text())
    assert meta["own_phrasings"] is True and meta["own_forget_values"] is True
    assert "Own phrasings" in (tmp_path / "o" / "README.md").read_text()
    s = SIZES["study"]
    uniform = build_splits(0, s.authors, s.questions, True, s.percents, own_phrasings=True)
    assert uniform == build_splits(0, s.authors, s.questions, True, s.percents)


def test_graded_copies_grade_forget_facts_at_the_same_row_budget_and_touch_nothing_else() -> None:
    s = SIZES["study"]
    own, _ = build_splits(0, s.authors, s.questions, False, s.percents, own_forget_values=True)
    graded, meta = build_splits(0, s.authors, s.questions, False, s.percents, own_forget_values=True,
                                graded_copies=True)
    assert meta["graded_copies"] is True and meta["own_forget_values"] is True
    copies = Counter(r["copies"] for r in meta["forget25_rows"])
    assert copies == {0: 83, 5: 4, 6: 4, 7: 3, 2: 3, 3: 3}  # 11 deep (5-7), 6 shallow (2-3), 83 none
    assert abs(len(graded["full"]) - len(own["full"])) <= 0.02 * len(own["full"])  # 480 vs 474 rows
    assert len(graded["full"]) == 400 + 65 + 15
    # only the extra copies move: every forget, retain75, perturbed, holdout and general row is the same
    assert [k for k in own if own[k] != graded[k]] == ["full", "retain99", "retain95", "retain90"]
    assert graded["full"][: len(own["retain75"])] == own["retain75"]
    forget_rows = graded["full"][len(own["retain75"]):]  # each forget fact's QA row, then its extra copies
    expected: Counter[str] = Counter()
    for row, m in zip(graded["forget25"], meta["forget25_rows"], strict=True):
        expected[row["answer"]] += 1 + m["copies"]  # the copies repeat the fact's own answer
    assert Counter(r["answer"] for r in forget_rows) == expected and expected.total() == 100 + 80


def test_graded_copies_is_off_by_default_and_ignored_by_uniform(tmp_path: Path) -> None:
    s = SIZES["study"]
    assert build_splits(0, s.authors, s.questions, True, s.percents, graded_copies=True) == \
        build_splits(0, s.authors, s.questions, True, s.percents)
    assert main(["data", "synth", "--size", "study-own", "--graded-copies", "--out", str(tmp_path / "g")]) == 0
    meta = json.loads((tmp_path / "g" / "META.json").read_text())
    assert meta["graded_copies"] is True and meta["rows"]["full"] == 480
    assert "Graded copies" in (tmp_path / "g" / "README.md").read_text()
    assert main(["data", "synth", "--size", "study-own", "--out", str(tmp_path / "o")]) == 0
    assert digest(tmp_path / "o") == STUDY_DIGEST["own"]
