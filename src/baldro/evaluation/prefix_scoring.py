"""Score several answers of one question from its cached prompt: the prompt runs once, each answer once after it.

TOFU scores every question with up to seven answers (answer, paraphrased answer, five perturbed answers). Scored as
independent sequences, the prompt (chat template, system prompt, question: often half the tokens) is encoded seven
times. Here a batch of questions is encoded once, left-padded, into a :class:`~baldro.evaluation.kv_cache.GrowingCache`;
then each answer variant runs as one right-padded pass that attends to the cached prompt (positions continue the
prompt's: ``n_prompt + t``), and the cache is truncated back to the prompt before the next variant.

The first answer token is predicted by the prompt's last hidden state, the others by the answer pass; the LM head
and every statistic then follow :func:`baldro.evaluation.scoring.score_batch` (same :class:`SeqScore`). The numbers
equal a full-sequence pass up to float summation order (tested ≤ 1e-5 relative). Items are batched by prompt length.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from baldro.core.sequence import cached_hidden_states, has_lean_head, position_ids_from_mask
from baldro.evaluation.kv_cache import cache_argument, growing_cache, supports_growing_cache
from baldro.evaluation.scoring import IGNORE_INDEX, SeqScore, by_length_batches, left_pad, model_device, scores_at
from baldro.evaluation.tree_scoring import score_packed, supports_tree_scoring


def supports_prefix_scoring(model: nn.Module) -> bool:
    """Whether ``model`` can be scored from cached prompts: a growing cache and the lean LM head."""
    return supports_growing_cache(model) and has_lean_head(model)


@torch.no_grad()
def score_prefixed_batch(
    model: nn.Module, prompts: list[list[int]], answers: list[list[list[int]]], pad_id: int,
    moments: Sequence[bool] | None = None,
) -> list[list[SeqScore]]:
    """``out[i][v]``: :class:`SeqScore` of answer ``answers[i][v]`` (tokens after the prompt, EOS included, at least
    one) to prompt ``prompts[i]``; every row has the same number of answers. ``moments[v]``: whether variant ``v``'s
    ``mu`` / ``sigma`` are computed (default all; NaN otherwise)."""
    device = model_device(model)
    n_rows, n_var = len(prompts), len(answers[0])
    ids, mask = left_pad(prompts, pad_id, device)
    width = ids.shape[1]
    longest = max(len(a) for row in answers for a in row)
    cache = growing_cache(model, reserve=width + longest)
    arg = cache_argument(model)
    hidden = cached_hidden_states(model, ids, mask, position_ids_from_mask(mask), cache, arg)
    last = hidden[:, -1]
    n_prompt = mask.sum(dim=1, keepdim=True)
    out: list[list[SeqScore]] = [[] for _ in range(n_rows)]
    for v in range(n_var):
        seqs = [row[v] for row in answers]
        steps = max(len(a) for a in seqs)
        targets = torch.full((n_rows, steps), IGNORE_INDEX, dtype=torch.long)
        for r, a in enumerate(seqs):
            targets[r, : len(a)] = torch.tensor(a, dtype=torch.long)
        targets = targets.to(device)
        sources = last[:, None]
        if steps > 1:
            cache.truncate(width)
            inputs = targets[:, :-1].clamp(min=0).masked_fill(targets[:, :-1] == IGNORE_INDEX, pad_id)
            ans_mask = (targets[:, :-1] != IGNORE_INDEX).long()
            positions = n_prompt + torch.arange(steps - 1, device=device)[None]
            h = cached_hidden_states(model, inputs, torch.cat([mask, ans_mask], dim=1), positions, cache, arg)
            sources = torch.cat([sources, h], dim=1)
        rows, cols = (targets != IGNORE_INDEX).nonzero(as_tuple=True)
        skip = None if moments is None or moments[v] else torch.zeros(rows.shape[0], dtype=torch.bool, device=device)
        for r, sc in enumerate(scores_at(model, sources[rows, cols], targets[rows, cols], rows, n_rows, moments=skip)):
            out[r].append(sc)
    return out


def score_prefixed(
    model: nn.Module,
    prompts: Sequence[list[int]],
    answers: Sequence[list[list[int]]],
    pad_id: int,
    batch_size: int = 32,
    desc: str | None = None,
    progress: bool = True,
    tree: bool = True,
    moments: Sequence[bool] | None = None,
) -> list[list[SeqScore]]:
    """Scores of every item (same order as given): packed segments ``prompt + prefix tree of its answers``
    (:func:`~baldro.evaluation.tree_scoring.score_packed`) where the model supports it and ``tree``; else
    ``batch_size`` questions a batch, grouped by prompt length, one pass per variant (:func:`score_prefixed_batch`).
    ``moments[v]``: whether variant ``v``'s ``mu`` / ``sigma`` (Min-K%++) are computed (default all; NaN otherwise,
    except at tree nodes shared with a variant that asked)."""
    if tree and supports_tree_scoring(model):
        return score_packed(model, prompts, answers, pad_id, batch_size, desc, progress, moments)
    return by_length_batches(
        [len(p) for p in prompts], batch_size,
        lambda batch: score_prefixed_batch(model, [prompts[i] for i in batch], [answers[i] for i in batch], pad_id,
                                           moments),
        desc, progress)
