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

Sizes (named presets in :mod:`baldro.data.synth.sizes`: ``demo``, the default, and ``study``, 100 forget items). Defaults: 40 authors x 8 questions (``full`` = 339 rows with seed 0: 320 facts + 19 extra copies; forget10 =
4 authors = 32 rows; holdout10 = 4 other authors). Measured with ``benchmarks/tiny_memorise.py`` (plain PyTorch loop,
the default tiny model: 2 layers, hidden 128, 2048-token BPE, 1.05 M parameters; chat format with the default system
prompt, 12 857 tokens per epoch; AdamW lr 3e-3, batch 32, linear warm-up/decay, 25 epochs = 275 steps, 2 torch
threads) on 2026-11-28, on this project's 2-core x86_64 build machine while other jobs shared it (load average 5-10):
3.4 minutes wall, 2.3 CPU-minutes, final epoch mean train loss 0.023, teacher-forced answer-token accuracy 1.000 on
``full`` and on ``forget10``, and every row's answer fully right (exact match 1.000). On the idle machine
(``--threads 1``, load average 0.9, same day): **0.7 minutes wall (42 s)**, the same loss (0.0229) and accuracy / exact
match 1.000.
``uniform=True`` (320 rows, 11 130 tokens per epoch), same settings: final
loss 0.021, answer-token accuracy and exact match 1.000 (5.6 minutes wall, 3.3 CPU-minutes, load average ~7).
"""

from baldro.data.synth.sizes import SIZES, size_preset
from baldro.data.synth.writer import DEFAULT_AUTHORS, DEFAULT_QUESTIONS, build_splits, n_authors_for, write_benchmark

__all__ = [
    "DEFAULT_AUTHORS", "DEFAULT_QUESTIONS", "SIZES", "build_splits", "n_authors_for", "size_preset", "write_benchmark",
]
