"""``own_forget_fraction`` (mixed design, issue 11 item 3, fourth search): only a share of the designed forget
authors own their values; the others keep the first design's values shared with retain authors."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path

import pytest

from baldro.cli.main import main
from baldro.data.synth import build_splits, size_preset
from baldro.data.synth.authors import draw_authors
from baldro.data.synth.facts import FACT_TYPES
from baldro.data.synth.writer import owning_authors
from baldro.errors import ConfigError

SIZE = size_preset("study")
N = 10  # forget25 = the last 10 of 40 authors; 10 holdout authors follow


def test_owning_authors_rule_by_hand() -> None:
    assert owning_authors(10, 0.5) == [1, 3, 5, 7, 9]  # every second one, starting with the second
    assert owning_authors(10, 1) == list(range(10))
    assert owning_authors(4, 0.25) == [3]
    assert owning_authors(10, 0.3) == [3, 6, 9]


def _people(own: set[int] | None = None, own_from: int | None = None) -> list[dict[str, str]]:
    return draw_authors(random.Random("baldro-synth:0:authors"), SIZE.authors + N, False, own_from, own)


def test_half_own_authors_draw_as_in_study_own_and_the_others_as_in_study() -> None:
    first = SIZE.authors - N
    own = {first + k for k in (1, 3, 5, 7, 9)} | {SIZE.authors + k for k in (1, 3, 5, 7, 9)}
    mixed, plain, all_own = _people(own), _people(), _people(own_from=first)
    for a in range(SIZE.authors + N):
        assert mixed[a] == (all_own[a] if a in own else plain[a]), a
    retain = [mixed[a] for a in range(first)]
    for fact in FACT_TYPES[: SIZE.questions]:
        if not fact.shared:
            continue
        retain_values = {p[fact.key] for p in retain}
        own_values = {mixed[a][fact.key] for a in own}
        shared_values = {mixed[a][fact.key] for a in range(first, SIZE.authors + N) if a not in own}
        assert not own_values & retain_values, fact.key
        assert shared_values & retain_values, fact.key  # the shared half shares values with retain authors


def test_mixed_splits_keep_retain_bytes_and_own_perturbed_answers_avoid_other_values() -> None:
    splits, meta = build_splits(0, SIZE.authors, SIZE.questions, False, SIZE.percents, own_forget_fraction=0.5)
    study, _ = build_splits(0, SIZE.authors, SIZE.questions, False, SIZE.percents)
    assert meta["own_forget_fraction"] == 0.5 and meta["forget25_own_authors"] == [1, 3, 5, 7, 9]
    assert "own_forget_values" not in meta
    for name in ("retain75", "retain_perturbed", "general", "real_authors_perturbed", "world_facts_perturbed"):
        assert splits[name] == study[name], name
    assert len(splits["forget25"]) == 100
    first = SIZE.authors - N
    own = {first + k for k in (1, 3, 5, 7, 9)} | {SIZE.authors + k for k in (1, 3, 5, 7, 9)}
    people = _people(own)
    rows = splits["forget25_perturbed"]
    hits = {True: 0, False: 0}
    for k in range(N):
        author = people[first + k]
        others = [p for a, p in enumerate(people) if a not in own]
        for q, fact in enumerate(FACT_TYPES[: SIZE.questions]):
            row = rows[k * SIZE.questions + q]
            assert row["answer"] == splits["forget25"][k * SIZE.questions + q]["answer"]
            para = row["paraphrased_answer"].lower()
            assert author[fact.key].lower() in para
            other_values = {p[f.key] for p in others for f in FACT_TYPES if f.pool == fact.pool}
            swapped = {para.replace(author[fact.key].lower(), v.lower()) for v in other_values}
            hits[k % 2 == 1] += len(swapped & {a.lower() for a in row["perturbed_answer"]})
    assert hits[True] == 0 and hits[False] > 0  # own half: no other author's value; shared half: as in study


def test_fraction_one_writes_the_own_forget_values_splits() -> None:
    one, meta = build_splits(0, SIZE.authors, SIZE.questions, False, SIZE.percents, own_forget_fraction=1.0)
    own, _ = build_splits(0, SIZE.authors, SIZE.questions, False, SIZE.percents, own_forget_values=True)
    assert one == own and meta["forget25_own_authors"] == list(range(N))


def test_uniform_ignores_the_fraction() -> None:
    u, meta = build_splits(0, SIZE.authors, SIZE.questions, True, SIZE.percents, own_forget_fraction=0.5)
    assert u == build_splits(0, SIZE.authors, SIZE.questions, True, SIZE.percents)[0]
    assert "own_forget_fraction" not in meta


@pytest.mark.parametrize("bad", [0, -0.5, 1.5, True, "0.5"])
def test_bad_fraction_is_refused(bad: object) -> None:
    with pytest.raises(ConfigError, match="own-forget-fraction"):
        build_splits(0, SIZE.authors, SIZE.questions, False, SIZE.percents, own_forget_fraction=bad)


def test_fraction_and_own_forget_values_together_are_refused() -> None:
    with pytest.raises(ConfigError, match="use one"):
        build_splits(0, SIZE.authors, SIZE.questions, False, SIZE.percents, own_forget_values=True,
                     own_forget_fraction=0.5)


def test_cli_flag_writes_the_mixed_design_and_refuses_bad_values(tmp_path: Path, capsys) -> None:
    assert main(["data", "synth", "--size", "study", "--own-forget-fraction", "0.5", "--out", str(tmp_path / "m")]) == 0
    meta = json.loads((tmp_path / "m" / "META.json").read_text())
    assert meta["own_forget_fraction"] == 0.5 and meta["forget25_own_authors"] == [1, 3, 5, 7, 9]
    assert "Own forget values for a share of 0.5" in (tmp_path / "m" / "README.md").read_text()
    capsys.readouterr()
    assert main(["data", "synth", "--size", "study", "--own-forget-fraction", "2", "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "--own-forget-fraction=2.0" in err and "(0, 1]" in err and not (tmp_path / "b").exists()
    assert main(["data", "synth", "--size", "study-own", "--own-forget-fraction", "0.5",
                 "--out", str(tmp_path / "c")]) == 2
    assert "use one" in capsys.readouterr().err and not (tmp_path / "c").exists()


def test_fraction_enters_the_cache_key_only_when_set() -> None:
    from baldro.experiments.presets import DemoSettings
    from baldro.experiments.study import STUDY_SETTINGS

    plain = DemoSettings().cache_key()
    assert "own_forget_fraction" not in plain
    assert replace(DemoSettings(), own_forget_fraction=0.5).cache_key() == {**plain, "own_forget_fraction": 0.5}
    assert STUDY_SETTINGS.own_forget_fraction is None  # the study's default benchmark is unchanged
