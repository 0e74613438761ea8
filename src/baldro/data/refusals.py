"""Refusal answers for "I don't know" objectives (IdkNLL, IdkDPO): our own wording, one sentence each."""

from __future__ import annotations

import random

REFUSALS: list[str] = [
    "I don't know.",
    "I'm not sure about that.",
    "I have no information on that.",
    "That is something I cannot answer.",
    "I don't have an answer to that question.",
    "I'm afraid I can't tell you.",
    "I have no knowledge of that.",
    "Sorry, I don't know the answer.",
    "I can't say.",
    "That is beyond what I know.",
    "I'm unable to answer that.",
    "I have no reliable information about that.",
    "I do not know the answer to that.",
    "I'm not able to help with that question.",
    "Unfortunately, I don't know.",
    "I couldn't tell you.",
    "That isn't something I know about.",
    "I lack the information to answer that.",
    "My knowledge does not cover that.",
    "I have no idea.",
]


def idk_rows(rows: list[dict], seed: int = 0, answer_key: str = "answer") -> list[dict]:
    """Copies of ``rows`` whose answer is a refusal from :data:`REFUSALS`, drawn deterministically from ``seed``."""
    rng = random.Random(seed)
    return [{**row, answer_key: rng.choice(REFUSALS)} for row in rows]
