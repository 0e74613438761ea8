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
