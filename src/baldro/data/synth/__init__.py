"""The embedded fictitious-author benchmark: TOFU's splits and schema, generated offline from our own word lists.

Design (issue 3 §4). Each author has one value per fact type (name, birthplace, genre, parents' occupations, debut
book, award, birth date, themes, mentor, hobby, best-known book); ``questions`` picks the first Q fact types. Each
asked fact becomes a row with a question, an answer phrasing, a different paraphrased answer, a paraphrased question and
five perturbed answers (the paraphrase's phrasing with the value swapped for other values of the same pool).

Forgetting difficulty is heterogeneous by design — the situation BalDRO is built for:

- answer lengths vary: each row's phrasing is drawn among four, from a bare value ("In Ravenmouth.") to a long
  sentence of ~20 words;
- some values are shared by many authors: genres, towns, parents' occupations, awards, themes and hobbies are drawn
  from a Zipf-like law (a few values cover a large share of authors), so retain data keeps them likely;
- some forget-set facts are memorised harder: a third of the facts of the ``forget10`` authors get 2–3 extra copies
  in ``full`` (the same answer under other phrasings of the question).

``uniform=True`` removes all three (the paper's edge case): fixed phrasings, no value shared by two authors, no extra
copies.

Sizes (named presets in :mod:`baldro.data.synth.sizes`: ``demo``, the default; ``study``, 100 forget items;
``study-own``, the same with own forget values).
Defaults: 40 authors x 8 questions (``full`` = 339 rows with seed 0: 320 facts + 19 extra copies; forget10 =
4 authors = 32 rows; holdout10 = 4 other authors). The default tiny model memorises ``full`` completely (exact
match 1.000) in 25 epochs; the dated measurements (``benchmarks/tiny_memorise.py``) are in benchmarks/RESULTS.md.
"""

from baldro.data.synth.sizes import SIZES, size_preset
from baldro.data.synth.writer import DEFAULT_AUTHORS, DEFAULT_QUESTIONS, build_splits, n_authors_for, write_benchmark

__all__ = [
    "DEFAULT_AUTHORS", "DEFAULT_QUESTIONS", "SIZES", "build_splits", "n_authors_for", "size_preset", "write_benchmark",
]
