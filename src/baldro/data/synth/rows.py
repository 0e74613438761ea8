"""Turning an author's facts into TOFU rows: the QA row, the perturbed row and the extra training copies."""

from __future__ import annotations

import random
from dataclasses import dataclass

from baldro.data.synth.facts import FactType

N_PERTURBED = 5
PHRASINGS = 4


@dataclass(frozen=True)
class FactRow:
    """One asked fact of one author, with everything the splits need."""

    fact: str
    question: str
    answer: str
    paraphrased_answer: str
    perturbed_answer: tuple[str, ...]
    paraphrased_question: str
    copies: tuple[str, ...]  # questions of the extra training copies (each paired with ``answer``)

    def qa(self) -> dict:
        return {"question": self.question, "answer": self.answer}

    def perturbed(self) -> dict:
        return {
            "question": self.question,
            "answer": self.answer,
            "paraphrased_answer": self.paraphrased_answer,
            "perturbed_answer": list(self.perturbed_answer),
            "paraphrased_question": self.paraphrased_question,
        }


def _wrong_values(rng: random.Random, pool: tuple[str, ...], index: dict[str, int], value: str) -> list[str]:
    picks = rng.sample(range(len(pool)), N_PERTURBED + 1)
    return [pool[i] for i in picks if i != index[value]][:N_PERTURBED]


def make_fact_row(
    fact: FactType,
    author: dict[str, str],
    rng: random.Random,
    pool: tuple[str, ...],
    index: dict[str, int],
    uniform: bool,
    n_copies: int,
    close_paraphrase: bool = False,
    answers: tuple[str, ...] | None = None,
) -> FactRow:
    """Phrase one fact. Heterogeneous mode picks the answer phrasing at random (short to long) and a different one
    for the paraphrase; uniform mode always uses phrasings 1 and 2. Perturbed answers keep the paraphrase's phrasing
    and swap the value for other values of the same pool (TOFU's construction). ``close_paraphrase`` (heterogeneous
    mode) takes the paraphrase's phrasing next to the answer's in length order (one step shorter or longer).
    ``answers`` replaces ``fact.answers`` (same length order; used for forget authors' own phrasings)."""
    if uniform:
        a_idx, p_idx = 1, 2
    else:
        a_idx = rng.randrange(PHRASINGS)
        near = (a_idx - 1, a_idx + 1) if close_paraphrase else range(PHRASINGS)
        p_idx = rng.choice([i for i in near if i != a_idx and 0 <= i < PHRASINGS])
    value = author[fact.key]
    templates = fact.answers if answers is None else answers

    def say(template: str, v: str) -> str:
        text = template.format(**author, value=v)
        return text[0].upper() + text[1:]

    copy_templates = fact.questions[2:] + fact.questions[:1]
    return FactRow(
        fact=fact.key,
        question=say(fact.questions[0], value),
        answer=say(templates[a_idx], value),
        paraphrased_answer=say(templates[p_idx], value),
        perturbed_answer=tuple(say(templates[p_idx], v) for v in _wrong_values(rng, pool, index, value)),
        paraphrased_question=say(fact.questions[1], value),
        copies=tuple(say(copy_templates[i % len(copy_templates)], value) for i in range(n_copies)),
    )
