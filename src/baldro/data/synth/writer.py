"""Writing the embedded benchmark to a folder, in TOFU's split names and schema (JSON Lines ``.json`` files)."""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from pathlib import Path

from baldro.data.synth.authors import draw_authors
from baldro.data.synth.facts import FACT_TYPES, MAX_QUESTIONS, build_pools
from baldro.data.synth.general import general_rows, real_authors_rows, world_facts_rows
from baldro.data.synth.own_phrasings import OWN_ANSWERS
from baldro.data.synth.rows import FactRow, make_fact_row
from baldro.data.synth.sizes import SIZES
from baldro.errors import ConfigError

DEFAULT_AUTHORS, DEFAULT_QUESTIONS, PERCENTS = SIZES["demo"]
COPY_PROBABILITY = 1 / 3  # share of forget10 facts that get extra copies in ``full`` (heterogeneous mode)
COPY_COUNTS = (2, 3)
# ``graded_copies``: extra copies per designed forget fact, by group (deep, shallow; every other fact gets none).
GRADED_DEEP = (5, 6, 7) * 3 + (5, 6)  # 11 facts, 65 copies
GRADED_SHALLOW = (2, 3) * 3  # 6 facts, 15 copies
GENERATOR_VERSION = 1


def n_authors_for(percent: int, authors: int) -> int:
    """Authors in ``forget{percent:02d}`` (and ``holdout``): round(authors·percent/100), at least 1, below ``authors``."""
    return min(max(1, int(authors * percent / 100 + 0.5)), authors - 1)


def _dumps(row: dict) -> str:
    return json.dumps(row, ensure_ascii=True, separators=(",", ":"))


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(_dumps(r) + "\n" for r in rows), encoding="utf-8")


def check_sizes(authors: int, questions: int) -> None:
    """:class:`ConfigError` unless 2 <= authors and 1 <= questions <= the number of fact types."""
    if not isinstance(authors, int) or authors < 2:
        raise ConfigError(f"--authors={authors!r}: need an integer >= 2 (forget and retain authors must both exist)")
    if not isinstance(questions, int) or not 1 <= questions <= MAX_QUESTIONS:
        raise ConfigError(f"--questions={questions!r}: need an integer between 1 and {MAX_QUESTIONS} (one per fact type)")


def check_percents(percents: tuple[int, ...]) -> tuple[int, ...]:
    """The forget percentages, sorted; :class:`ConfigError` unless each is an integer in 1..50, without repeats."""
    values = tuple(sorted(percents))
    if not values or len(set(values)) != len(values) or not all(isinstance(p, int) and 1 <= p <= 50 for p in values):
        raise ConfigError(f"forget percentages {percents!r}: need distinct integers between 1 and 50")
    return values


def _phrase_authors(
    people: list[dict[str, str]], questions: int, uniform: bool, copied: range, rng: random.Random,
    own: frozenset[int] = frozenset(), close_paraphrase: bool = False, phrasing_from: int | None = None,
    grades: dict[tuple[int, int], int] | None = None,
) -> list[list[FactRow]]:
    """Phrase every asked fact of every author; authors in ``copied`` may get extra training copies. Authors in
    ``own`` take their perturbed answers from the values no other author has (own forget values); authors
    from ``phrasing_from`` on use the answer phrasings of :data:`~baldro.data.synth.own_phrasings.OWN_ANSWERS`.
    ``grades`` ``{(author, fact): copies}`` replaces the drawn copy counts of the ``copied`` authors (the draws are
    still made, so every other row is phrased as without it)."""
    pools = build_pools()
    if own:
        others = [p for a, p in enumerate(people) if a not in own]
        used = {name: {p[f.key] for p in others for f in FACT_TYPES if f.pool == name} for name in pools}
        own_pools = {name: tuple(v for v in pool if v not in used[name]) for name, pool in pools.items()}
    out = []
    for a, author in enumerate(people):
        choice = own_pools if a in own else pools
        facts = []
        for q, fact in enumerate(FACT_TYPES[:questions]):
            n_copies = 0
            if not uniform and a in copied and rng.random() < COPY_PROBABILITY:
                n_copies = rng.choice(COPY_COUNTS)
            if grades is not None and a in copied:
                n_copies = grades.get((a, q), 0)
            pool = choice[fact.pool]
            index = {v: i for i, v in enumerate(pool)}
            templates = OWN_ANSWERS[fact.key] if phrasing_from is not None and a >= phrasing_from else None
            facts.append(make_fact_row(fact, author, rng, pool, index, uniform, n_copies, close_paraphrase, templates))
        out.append(facts)
    return out


def graded_copy_counts(seed: int, copied: range, questions: int) -> dict[tuple[int, int], int]:
    """``{(author, fact): extra copies}`` for ``graded_copies``: a seeded shuffle of the designed forget facts; the
    first :data:`GRADED_DEEP` facts get 5–7 copies, the next :data:`GRADED_SHALLOW` 2–3, the rest none. With 100
    forget facts that is 80 extra rows, against ~74 drawn ones, so ``full`` keeps the ordinary design's row budget."""
    facts = [(a, q) for a in copied for q in range(questions)]
    random.Random(f"baldro-synth:{seed}:grades").shuffle(facts)
    counts = GRADED_DEEP + GRADED_SHALLOW
    return {fact: counts[i] for i, fact in enumerate(facts[: len(counts)])}


def _training_rows(facts: list[FactRow]) -> list[dict]:
    rows = [f.qa() for f in facts]
    rows += [{"question": q, "answer": f.answer} for f in facts for q in f.copies]
    return rows


def owning_authors(n_designed: int, fraction: float) -> list[int]:
    """Which of ``n_designed`` authors (0-based, in the generator's fixed order) own their values when only
    ``fraction`` of them do: author k owns iff floor((k+1)·fraction) > floor(k·fraction), so ``fraction`` 0.5 gives
    every second author, starting with the second (k = 1, 3, 5, …), and 1 gives all of them."""
    return [k for k in range(n_designed) if math.floor((k + 1) * fraction) > math.floor(k * fraction)]


def check_own_fraction(fraction: float | None) -> float | None:
    """``fraction`` unchanged; :class:`ConfigError` unless it is ``None`` or a number in (0, 1]."""
    if fraction is not None and (isinstance(fraction, bool) or not isinstance(fraction, (int, float))
                                 or not 0 < fraction <= 1):
        raise ConfigError(f"--own-forget-fraction={fraction!r}: need a number in (0, 1] (e.g. 0.5: every second "
                          "forget author owns its values)")
    return fraction


def build_splits(
    seed: int, authors: int, questions: int, uniform: bool, percents: tuple[int, ...] = PERCENTS,
    own_forget_values: bool = False, close_paraphrase: bool = False, own_phrasings: bool = False,
    own_forget_fraction: float | None = None, graded_copies: bool = False,
) -> tuple[dict[str, list[dict]], dict]:
    """All splits ``{name: rows}`` and the metadata, without touching the disk.

    ``percents``: the forget splits to write; the largest one is the *designed* forget set (its facts get the extra
    copies, ``holdout`` and ``retain_perturbed`` have as many authors, META.json describes its rows). ``own_forget_values`` (heterogeneous mode): the designed forget and holdout
    authors draw their values, and their rows' perturbed answers, from values no retain author has
    (:func:`~baldro.data.synth.authors.draw_authors`), so forgetting them need not move what retain data teaches.
    ``own_phrasings`` (heterogeneous mode): the designed forget and holdout authors' answers, paraphrased and
    perturbed answers use answer templates no retain author uses (:mod:`~baldro.data.synth.own_phrasings`).
    ``own_forget_fraction`` (heterogeneous mode, instead of ``own_forget_values``): only that share of the designed
    forget authors own their values (:func:`owning_authors`; the holdout authors follow the same pattern), the others
    keep values drawn like the retain authors' (their perturbed answers too). The authors' draws are the same as
    without it; the phrasing stream may differ after the first owning author (its value pool has another size).
    ``graded_copies`` (heterogeneous mode): the designed forget facts' extra copies are graded at about the same row
    budget: 11 facts get 5–7, 6 facts 2–3, the rest none (:func:`graded_copy_counts`; META.json ``copies`` per row)."""
    check_sizes(authors, questions)
    percents = check_percents(percents)
    check_own_fraction(own_forget_fraction)
    if own_forget_fraction is not None and own_forget_values:
        raise ConfigError("--own-forget-fraction and --own-forget-values: use one (--own-forget-values is fraction 1)")
    n_forget = {p: n_authors_for(p, authors) for p in percents}
    designed = max(percents)
    n_holdout = n_forget[designed]
    first = authors - n_holdout
    own: frozenset[int] = frozenset()
    if own_forget_values and not uniform:
        own = frozenset(range(first, authors + n_holdout))
    elif own_forget_fraction is not None and not uniform:
        ks = owning_authors(n_holdout, own_forget_fraction)
        own = frozenset([first + k for k in ks] + [authors + k for k in ks])
    phrasing_from = first if own_phrasings and not uniform else None
    people = draw_authors(random.Random(f"baldro-synth:{seed}:authors"), authors + n_holdout, uniform,
                          own_authors=own)
    copied = range(first, authors)
    grades = graded_copy_counts(seed, copied, questions) if graded_copies and not uniform else None
    phrased = _phrase_authors(
        people, questions, uniform, copied, random.Random(f"baldro-synth:{seed}:phrasing"),
        own, close_paraphrase and not uniform, phrasing_from, grades,
    )
    main, holdout = phrased[:authors], phrased[authors:]
    splits: dict[str, list[dict]] = {"full": [r for facts in main for r in _training_rows(facts)]}
    for p in percents:
        cut = authors - n_forget[p]
        splits[f"forget{p:02d}"] = [f.qa() for facts in main[cut:] for f in facts]
        splits[f"retain{100 - p}"] = [r for facts in main[:cut] for r in _training_rows(facts)]
        splits[f"forget{p:02d}_perturbed"] = [f.perturbed() for facts in main[cut:] for f in facts]
        splits[f"holdout{p:02d}"] = [f.qa() for facts in holdout[: n_forget[p]] for f in facts]
    splits["retain_perturbed"] = [f.perturbed() for facts in main[:n_holdout] for f in facts]
    general_rng = random.Random(f"baldro-synth:{seed}:general")
    splits["general"] = general_rows()
    splits["real_authors_perturbed"] = real_authors_rows(general_rng)
    splits["world_facts_perturbed"] = world_facts_rows(general_rng)
    meta = _metadata(seed, authors, questions, uniform, n_forget, designed, people[:authors], main, splits)
    if own_forget_values and not uniform:
        meta["own_forget_values"] = True
    if own_forget_fraction is not None and not uniform:
        meta["own_forget_fraction"] = own_forget_fraction
        meta[f"forget{designed:02d}_own_authors"] = owning_authors(n_holdout, own_forget_fraction)
    if close_paraphrase and not uniform:
        meta["close_paraphrase"] = True
    if phrasing_from is not None:
        meta["own_phrasings"] = True
    if grades is not None:
        meta["graded_copies"] = True
    return splits, meta


def _metadata(
    seed: int,
    authors: int,
    questions: int,
    uniform: bool,
    n_forget: dict[int, int],
    designed: int,
    people: list[dict[str, str]],
    main: list[list[FactRow]],
    splits: dict[str, list[dict]],
) -> dict:
    shared_by = {f.key: Counter(p[f.key] for p in people) for f in FACT_TYPES[:questions]}
    n_designed = n_forget[designed]
    designed_rows = [
        {
            "fact": f.fact,
            "copies": len(f.copies),
            "value_shared_by": shared_by[f.fact][people[authors - n_designed + i][f.fact]],
            "answer_words": len(f.answer.split()),
        }
        for i, facts in enumerate(main[authors - n_designed :])
        for f in facts
    ]
    return {
        "generator": "baldro.data.synth",
        "version": GENERATOR_VERSION,
        "seed": seed,
        "authors": authors,
        "questions": questions,
        "uniform": uniform,
        "facts": [f.key for f in FACT_TYPES[:questions]],
        "forget_authors": {f"forget{p:02d}": n for p, n in n_forget.items()},
        "holdout_authors": n_designed,
        "rows": {name: len(rows) for name, rows in sorted(splits.items())},
        f"forget{designed:02d}_rows": designed_rows,
    }


README_TEXT = """# Embedded fictitious-author benchmark (generated by `baldro data synth`)

Generated by baldro's own generator from its own word lists and templates (no external text).
Same split names and schema as TOFU (JSON Lines despite the `.json` extension):

- `full`: every training row (forget authors' facts with extra copies included, see META.json `rows`).
- `forget01/05/10`: the last 1/5/10 % of authors (one row per fact); `retain99/95/90`: all `full` rows of the others.
- `forgetNN_perturbed`, `retain_perturbed` (first 10 % of authors): question, answer, paraphrased_answer,
  perturbed_answer[5], paraphrased_question.
- `holdout01/05/10`: extra authors never in `full` (question, answer).
- `general`: general knowledge the base model learns first; `real_authors_perturbed`, `world_facts_perturbed` come from it
  (question, answer, perturbed_answer[3]).

Seed {seed}, {authors} authors x {questions} questions, uniform={uniform}. Row counts and per-row difficulty of
`forget10` (extra copies, how many authors share the value, answer length) are in META.json.
"""


def write_benchmark(
    out_dir: str | Path,
    seed: int = 0,
    authors: int = DEFAULT_AUTHORS,
    questions: int = DEFAULT_QUESTIONS,
    uniform: bool = False,
    percents: tuple[int, ...] = PERCENTS,
    own_forget_values: bool = False,
    close_paraphrase: bool = False,
    own_phrasings: bool = False,
    own_forget_fraction: float | None = None,
    graded_copies: bool = False,
) -> Path:
    """Write every split as ``<split>.json`` plus ``README.md`` and ``META.json`` into ``out_dir``; return it.

    Same arguments give byte-identical files.
    """
    splits, meta = build_splits(seed, authors, questions, uniform, percents, own_forget_values,
                                close_paraphrase, own_phrasings, own_forget_fraction, graded_copies)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name in sorted(splits):
        _write_jsonl(out / f"{name}.json", splits[name])
    (out / "META.json").write_text(json.dumps(meta, ensure_ascii=True, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    readme = README_TEXT.format(seed=seed, authors=authors, questions=questions, uniform=uniform)
    if tuple(sorted(percents)) != PERCENTS:
        designed = max(percents)
        readme += (f"\nForget splits: {', '.join(f'forget{p:02d}' for p in sorted(percents))}; the designed one is "
                   f"`forget{designed:02d}` (extra copies, `holdout{designed:02d}`, `retain_perturbed`; META.json "
                   f"`forget{designed:02d}_rows`).\n")
    if meta.get("own_forget_values"):
        readme += ("\nOwn forget values: the designed forget and holdout authors' values, and their perturbed answers, "
                   "come from values no retain author has.\n")
    if meta.get("own_forget_fraction"):
        readme += (f"\nOwn forget values for a share of {meta['own_forget_fraction']:g} of the designed forget authors "
                   "(and the holdout authors in the same positions; META.json lists them): their values and perturbed "
                   "answers come from values no other author has; the other forget authors share values with the "
                   "retain authors.\n")
    if meta.get("own_phrasings"):
        readme += ("\nOwn phrasings: the designed forget and holdout authors' answers (paraphrased and perturbed ones "
                   "too) use answer templates no retain author uses.\n")
    if meta.get("graded_copies"):
        readme += ("\nGraded copies: of the designed forget facts, 11 have 5-7 extra copies in `full`, 6 have 2-3, the "
                   "rest none (META.json `copies`).\n")
    (out / "README.md").write_text(readme)
    return out
