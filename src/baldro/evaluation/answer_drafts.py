"""Drafts for greedy generation from the scoring pass: the leading answer tokens the model's argmax already predicts.

A TOFU evaluation scores each question's answer by teacher forcing, and at every answer token it records whether the
argmax of the model's next-token distribution is that token (the greedy hit behind exact memorisation). Up to the first
miss, greedy decoding from the same prompt produces exactly those tokens, so they are a draft of the generation that the
scoring pass has already verified — speculative decoding with the reference answer as the draft. The decoder then
prefills them with the prompt in one call instead of running one decoding step per token
(:func:`~baldro.evaluation.generation.generate_greedy`, ``drafts``). A model that memorised its answers (a TOFU target
model on the forget and retain splits) has almost nothing left to decode; a model that predicts no answer token drafts
nothing and decodes as before.

The hits come from the scoring pass's numerics (packed rows, tree attention), not from single decoding steps, so a
near-tie between the two most likely tokens could round the other way in the two — the standard the lean decoding loop
already meets (the tokens of transformers' ``generate``, not its bits). ``draft_answers=False`` turns drafting off.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from baldro.core.labels import IGNORE_INDEX


def answer_draft(prompt: Sequence[int], ids: Sequence[int], labels: Sequence[int], hits: np.ndarray) -> list[int]:
    """The leading labelled tokens of ``ids`` that ``hits`` marks as argmax predictions (``hits[k]``: token ``k`` of
    the labelled answer is the argmax given everything before it), when ``ids`` is the generation ``prompt`` followed
    by labelled tokens only; ``[]`` otherwise (e.g. a prompt truncated differently, or unlabelled tokens in between)."""
    n = len(prompt)
    answer = list(labels[n:])
    if list(ids[:n]) != list(prompt) or any(lab != IGNORE_INDEX for lab in labels[:n]):
        return []
    if list(ids[n:]) != answer or IGNORE_INDEX in answer or len(hits) != len(answer):
        return []
    misses = np.flatnonzero(~np.asarray(hits, dtype=bool))
    return answer[: int(misses[0]) if misses.size else len(answer)]
