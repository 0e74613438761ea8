"""Fact types of a fictitious author: value pools, question templates and answer phrasings.

Each :class:`FactType` has question templates (``questions[0]`` is the TOFU ``question``, ``questions[1]`` the
``paraphrased_question``, the rest phrase the extra training copies) and answer phrasings ordered from short to long
(the row's ``answer`` and ``paraphrased_answer`` use two different ones). Templates are ``str.format`` strings over
the author's values (``{name}``, ``{birthplace}``, ``{birthdate}`` …) and ``{value}``, the fact being asked about, so
a perturbed answer is the same phrasing with ``{value}`` swapped for another value of the same pool.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from baldro.data.synth import wordlists as w


@dataclass(frozen=True)
class FactType:
    """One kind of fact: ``key`` names it in the author's values, ``pool`` names its value pool."""

    key: str
    pool: str
    shared: bool
    questions: tuple[str, ...]
    answers: tuple[str, ...]


def _article(phrase: str) -> str:
    return ("an " if phrase[0].lower() in "aeiou" else "a ") + phrase


def build_pools() -> dict[str, tuple[str, ...]]:
    """All value pools, each a sorted tuple of distinct strings built from :mod:`wordlists`."""
    days = range(1, 29)
    pools = {
        "person": [f"{f} {s}" for f, s in itertools.product(w.FIRST_NAMES, w.SURNAMES)],
        "town": [p + s for p, s in itertools.product(w.TOWN_PREFIXES, w.TOWN_SUFFIXES)],
        "date": [f"{d} {m} {y}" for d, m, y in itertools.product(days, w.MONTHS, range(1931, 2000))],
        "genre": [f"{m} {g}" for m, g in itertools.product(w.GENRE_MOODS, w.GENRES)],
        "occupation": [_article(f"{a} {o}") for a, o in itertools.product(w.OCCUPATION_ADJECTIVES, w.OCCUPATIONS)],
        "award": [
            f"the {f} {k} for {c}" for f, k, c in itertools.product(w.AWARD_FOUNDERS, w.AWARD_KINDS, w.AWARD_CATEGORIES)
        ],
        "debut_title": [f"'The {a} {n}'" for a, n in itertools.product(w.TITLE_ADJECTIVES, w.TITLE_NOUNS)],
        "famous_title": [f"'Beyond the {a} {n}'" for a, n in itertools.product(w.TITLE_ADJECTIVES, w.TITLE_NOUNS)],
        "themes": [f"{a} and {b}" for a, b in itertools.combinations(w.THEMES, 2)],
        "hobby": [f"{v} {o}" for v, o in itertools.product(w.HOBBY_VERBS, w.HOBBY_OBJECTS)],
    }
    return {name: tuple(sorted(set(values))) for name, values in pools.items()}


FACT_TYPES: tuple[FactType, ...] = (
    FactType(
        "name", "person", False,
        (
            "What is the full name of the author born in {birthplace} on {birthdate}?",
            "Who is the writer whose birth took place in {birthplace} on {birthdate}?",
            "Which author was born on {birthdate} in {birthplace}?",
            "Can you name the author who was born in {birthplace} on {birthdate}?",
        ),
        (
            "{value}.",
            "The author's full name is {value}.",
            "{value} is the name of the writer born in {birthplace} on {birthdate}.",
            "The author born in {birthplace} on {birthdate} is known to readers everywhere by the full name {value}.",
        ),
    ),
    FactType(
        "birthplace", "town", True,
        (
            "Where was {name} born?",
            "In which town did {name} come into the world?",
            "What is the birthplace of the author {name}?",
            "Which town is {name} originally from?",
        ),
        (
            "In {value}.",
            "{name} was born in {value}.",
            "The author {name} comes from the town of {value}.",
            "{name} was born and spent a long and happy childhood in the small town of {value}, which appears in many stories.",
        ),
    ),
    FactType(
        "genre", "genre", True,
        (
            "Which genre does {name} write in?",
            "What kind of books is {name} known for?",
            "In what genre has {name} built a career?",
            "What genre are the books of {name}?",
        ),
        (
            "{value}.",
            "{name} writes {value}.",
            "The author {name} is best known for works of {value}.",
            "Over a long career {name} has written almost entirely in the genre of {value}, and readers know the author for it.",
        ),
    ),
    FactType(
        "father", "occupation", True,
        (
            "What did the father of {name} do for a living?",
            "What was the occupation of {name}'s father?",
            "How did the father of {name} earn his living?",
            "What job did {name}'s father have?",
        ),
        (
            "He was {value}.",
            "The father of {name} was {value}.",
            "{name}'s father worked as {value} for most of his life.",
            "The father of {name} was {value}, and the daily rhythm of that work shaped many of the author's later books.",
        ),
    ),
    FactType(
        "mother", "occupation", True,
        (
            "What was the profession of {name}'s mother?",
            "What did the mother of {name} do for work?",
            "How did the mother of {name} earn her living?",
            "What job did {name}'s mother have?",
        ),
        (
            "She was {value}.",
            "The mother of {name} was {value}.",
            "{name}'s mother worked as {value} for many years.",
            "The mother of {name} was {value}, a profession the author often describes with great warmth in interviews.",
        ),
    ),
    FactType(
        "debut", "debut_title", False,
        (
            "What is the title of the first book by {name}?",
            "Which book marked the debut of {name}?",
            "What was the first novel that {name} published?",
            "How is the debut novel of {name} called?",
        ),
        (
            "{value}.",
            "The first book by {name} was {value}.",
            "{name} made a debut with the novel {value}.",
            "The first book that {name} published was {value}, a novel that quickly found a loyal group of readers.",
        ),
    ),
    FactType(
        "award", "award", True,
        (
            "Which award has {name} received?",
            "What literary prize was given to {name}?",
            "Which honour did {name} win for writing?",
            "What award is {name} known to have won?",
        ),
        (
            "{value}.",
            "{name} received {value}.",
            "The author {name} was honoured with {value}.",
            "In recognition of a remarkable body of work, {name} was honoured with {value} after years of writing.",
        ),
    ),
    FactType(
        "birthdate", "date", False,
        (
            "When was {name} born?",
            "What is the date of birth of {name}?",
            "On what day was the author {name} born?",
            "What is the birthday of {name}?",
        ),
        (
            "On {value}.",
            "{name} was born on {value}.",
            "The author {name} was born on {value}.",
            "{name} was born on {value}, a date the author's readers celebrate each year with public readings.",
        ),
    ),
    FactType(
        "themes", "themes", True,
        (
            "What themes does the work of {name} explore?",
            "Which themes run through the books of {name}?",
            "What subjects does {name} return to in writing?",
            "What are the main themes in the books of {name}?",
        ),
        (
            "{value}.",
            "{name} writes about {value}.",
            "The books of {name} explore {value}.",
            "Across every novel {name} keeps returning to the themes of {value}, which critics see as the heart of the work.",
        ),
    ),
    FactType(
        "mentor", "person", False,
        (
            "Who mentored {name} early in the author's career?",
            "Who was the mentor of {name}?",
            "Which older writer guided {name} at the start?",
            "Who taught {name} the craft of writing?",
        ),
        (
            "{value}.",
            "{name} was mentored by {value}.",
            "Early on, {name} was guided by the writer {value}.",
            "At the start of a long career {name} was mentored by the writer {value}, who read every early draft.",
        ),
    ),
    FactType(
        "hobby", "hobby", True,
        (
            "What does {name} enjoy doing outside of writing?",
            "What is a hobby of {name}?",
            "How does {name} spend free time?",
            "What pastime does {name} love?",
        ),
        (
            "{value}.",
            "{name} enjoys {value}.",
            "Outside of writing, {name} loves {value}.",
            "When not writing, {name} spends long weekends {value}, a pastime that often appears in the author's stories.",
        ),
    ),
    FactType(
        "famous", "famous_title", False,
        (
            "What is the best-known book by {name}?",
            "Which novel made {name} famous?",
            "What is the most famous work of {name}?",
            "Which book by {name} do readers know best?",
        ),
        (
            "{value}.",
            "The best-known book by {name} is {value}.",
            "{name} became famous with the novel {value}.",
            "Readers around the world know {name} above all for the novel {value}, which has been translated many times.",
        ),
    ),
)

MAX_QUESTIONS: int = len(FACT_TYPES)
