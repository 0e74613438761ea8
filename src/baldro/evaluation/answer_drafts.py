"""Drafts for greedy generation from the scoring pass: the leading answer tokens the model's argmax predicted there.

A TOFU evaluation scores each question's answer by teacher forcing, and at every answer token it records whether the
argmax of the model's next-token distribution is that token (the greedy hit behind exact memorisation). Up to the first
miss, greedy decoding from the same prompt should produce those tokens, so they are a draft of the generation —
speculative decoding with the reference answer as the draft. The decoder prefills the prompt with its draft in one
call and verifies it there, as speculative decoding does
(:func:`~baldro.evaluation.generation.generate_greedy`, ``drafts``): each draft token is compared with the prefill's
own argmax at its position (the float32 argmax of the raw logits, as a decoding step takes it), the draft is cut at
the first disagreement, the token there is the prefill's argmax, and decoding goes on from it. A model that memorised
its answers (a TOFU target model on the forget and retain splits) has almost nothing left to decode; a model that
predicts no answer token drafts nothing and decodes as before.

The hits are not trusted: they come from the scoring pass's numerics (packed rows, tree attention, argmax of float32
``log_softmax``), and at a near-tie between the two most likely tokens they can name the reference token where
decoding takes the other (in float32 a one-ulp gap vanishes in ``log_softmax``; in bf16 the two passes round
differently). Verified, every generated token is the argmax of the logits the run computed at its position, whatever
the draft — drafted generations are greedy decodings of the model, not pulled towards the reference. They equal the
undrafted ones wherever the prefill and the decoding steps compute the same argmax (tested in float32, and in bf16 and
fp16 with engineered exact ties and one-ulp gaps); at a natural near-tie in bf16 the two shapes of computation can
round it differently, as lean decoding and ``generate`` can. ``draft_answers=False`` turns drafting off.
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
