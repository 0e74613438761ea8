"""General knowledge for the embedded benchmark: the stand-in for pre-training.

The base model learns ``general.json`` before it sees any fictitious author. ``real_authors_perturbed`` and
``world_facts_perturbed`` (TOFU's model-utility splits) are drawn from it: the short true answer plus three wrong
answers of the same type, like TOFU's ``{question, answer, perturbed_answer[3]}`` rows.
Facts are common knowledge written down for this project.
"""

from __future__ import annotations

import random

# (work, author): real, well-known works and their authors.
REAL_WORKS: tuple[tuple[str, str], ...] = (
    ("Romeo and Juliet", "William Shakespeare"), ("Pride and Prejudice", "Jane Austen"),
    ("Oliver Twist", "Charles Dickens"), ("War and Peace", "Leo Tolstoy"), ("Don Quixote", "Miguel de Cervantes"),
    ("Moby-Dick", "Herman Melville"), ("The Odyssey", "Homer"), ("Les Miserables", "Victor Hugo"),
    ("Crime and Punishment", "Fyodor Dostoevsky"), ("Mrs Dalloway", "Virginia Woolf"),
    ("Adventures of Huckleberry Finn", "Mark Twain"), ("Frankenstein", "Mary Shelley"),
    ("Nineteen Eighty-Four", "George Orwell"), ("The Old Man and the Sea", "Ernest Hemingway"),
    ("One Hundred Years of Solitude", "Gabriel Garcia Marquez"), ("The Trial", "Franz Kafka"),
    ("Jane Eyre", "Charlotte Bronte"), ("Wuthering Heights", "Emily Bronte"), ("The Divine Comedy", "Dante Alighieri"),
    ("Faust", "Johann Wolfgang von Goethe"), ("Madame Bovary", "Gustave Flaubert"), ("Ulysses", "James Joyce"),
    ("The Great Gatsby", "F. Scott Fitzgerald"), ("Dracula", "Bram Stoker"), ("Beloved", "Toni Morrison"),
    ("Things Fall Apart", "Chinua Achebe"), ("The Little Prince", "Antoine de Saint-Exupery"),
    ("Anna Karenina", "Leo Tolstoy"), ("The Raven", "Edgar Allan Poe"), ("Hamlet", "William Shakespeare"),
)

# (question, answer, kind): answers of the same kind serve as each other's perturbed answers.
WORLD_FACTS: tuple[tuple[str, str, str], ...] = (
    ("What is the capital of France?", "Paris", "city"), ("What is the capital of Italy?", "Rome", "city"),
    ("What is the capital of Japan?", "Tokyo", "city"), ("What is the capital of Egypt?", "Cairo", "city"),
    ("What is the capital of Germany?", "Berlin", "city"), ("What is the capital of Spain?", "Madrid", "city"),
    ("What is the capital of Kenya?", "Nairobi", "city"), ("What is the capital of Canada?", "Ottawa", "city"),
    ("What is the capital of Peru?", "Lima", "city"), ("What is the capital of Norway?", "Oslo", "city"),
    ("What is the capital of Australia?", "Canberra", "city"), ("What is the capital of India?", "New Delhi", "city"),
    ("Which planet is closest to the Sun?", "Mercury", "planet"), ("Which planet is the largest?", "Jupiter", "planet"),
    ("Which planet is known as the Red Planet?", "Mars", "planet"),
    ("Which planet has the most famous rings?", "Saturn", "planet"),
    ("Which planet do we live on?", "Earth", "planet"),
    ("What is the chemical symbol for gold?", "Au", "symbol"), ("What is the chemical symbol for iron?", "Fe", "symbol"),
    ("What is the chemical symbol for sodium?", "Na", "symbol"),
    ("What is the chemical symbol for oxygen?", "O", "symbol"),
    ("What is the chemical symbol for silver?", "Ag", "symbol"),
    ("What is the largest ocean on Earth?", "the Pacific Ocean", "ocean"),
    ("Which ocean lies between Africa and Australia?", "the Indian Ocean", "ocean"),
    ("Which ocean separates Europe from North America?", "the Atlantic Ocean", "ocean"),
    ("Which ocean surrounds the North Pole?", "the Arctic Ocean", "ocean"),
    ("How many days are in a leap year?", "366", "number"), ("How many continents are there?", "7", "number"),
    ("How many legs does a spider have?", "8", "number"), ("How many sides does a hexagon have?", "6", "number"),
    ("How many hours are in a day?", "24", "number"), ("How many minutes are in an hour?", "60", "number"),
    ("What is the longest river in Africa?", "the Nile", "river"),
    ("Which river flows through London?", "the Thames", "river"),
    ("Which river flows through Paris?", "the Seine", "river"),
    ("Which river flows through Vienna?", "the Danube", "river"),
    ("What is the freezing point of water in degrees Celsius?", "0", "number"),
    ("What is the boiling point of water in degrees Celsius?", "100", "number"),
    ("What gas do plants absorb from the air?", "carbon dioxide", "gas"),
    ("What gas do humans need to breathe?", "oxygen", "gas"),
    ("What is the lightest gas?", "hydrogen", "gas"),
)

REAL_AUTHOR_QUESTIONS: tuple[str, ...] = (
    "Who wrote '{work}'?",
    "Who is the author of '{work}'?",
)


def general_rows() -> list[dict]:
    """Rows of ``general.json`` (``question``, ``answer``): every real-work and world fact, in a fixed order."""
    rows = [{"question": REAL_AUTHOR_QUESTIONS[i % 2].format(work=w), "answer": a} for i, (w, a) in enumerate(REAL_WORKS)]
    rows += [{"question": q, "answer": a} for q, a, _ in WORLD_FACTS]
    return rows


def _wrong(rng: random.Random, truth: str, candidates: list[str], k: int = 3) -> list[str]:
    others = sorted({c for c in candidates if c != truth})
    return rng.sample(others, k)


def real_authors_rows(rng: random.Random) -> list[dict]:
    """``real_authors_perturbed``: ``{question, answer, perturbed_answer[3]}`` for every real work."""
    authors = [a for _, a in REAL_WORKS]
    return [
        {"question": REAL_AUTHOR_QUESTIONS[i % 2].format(work=w), "answer": a, "perturbed_answer": _wrong(rng, a, authors)}
        for i, (w, a) in enumerate(REAL_WORKS)
    ]


def world_facts_rows(rng: random.Random) -> list[dict]:
    """``world_facts_perturbed``: world facts whose kind has at least four distinct answers, with three wrong ones."""
    by_kind: dict[str, list[str]] = {}
    for _, a, kind in WORLD_FACTS:
        by_kind.setdefault(kind, []).append(a)
    rows = []
    for q, a, kind in WORLD_FACTS:
        if len(set(by_kind[kind]) - {a}) >= 3:
            rows.append({"question": q, "answer": a, "perturbed_answer": _wrong(rng, a, by_kind[kind])})
    return rows
