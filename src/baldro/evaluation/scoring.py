"""Per-sequence answer statistics from one forward pass: NLL, token log-probs and greedy hits.

Sequences are sorted by length and batched (little padding); each batch runs one forward pass through the model's
own ``forward`` (see :func:`baldro.core.sequence.final_hidden_states`) and applies the LM head only at answer
positions, so every per-item statistic the benchmarks need comes from that single pass:

* ``avg_loss`` = Σ_t NLL_t / n over answer tokens (EOS included), ``prob`` = exp(−avg_loss) (TOFU probability);
* ``token_logprobs`` = log p(y_t) per answer token, in order (Min-K%, with the EOS prediction dropped by the caller);
* ``hits`` = [argmax_t == y_t] per answer token (exact memorization, extraction strength);
* ``mu``, ``sigma`` = mean and variance of log p over the vocabulary at each answer position (Min-K%++); NaN where
  the caller asked for no moments (``moments``: they cost about half the LM head's time at a large vocabulary) —
  unless the position is shared with a token that asked (one LM-head row serving several, ``index``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from baldro.core.padmask import arange_positions, token_mask
from baldro.core.sequence import IGNORE_INDEX, answer_positions, final_hidden_states, output_head
from baldro.evaluation.progress import item_batches

CHUNK_TOKENS = 1024
CHUNK_ELEMENTS = 2**26  # float32 [tokens, vocab] logits per chunk (256 MiB), e.g. 512 tokens at a 128k vocabulary


@dataclass
class SeqScore:
    """Answer statistics of one sequence (see the module docstring)."""

    avg_loss: float
    prob: float
    token_logprobs: np.ndarray
    hits: np.ndarray
    mu: np.ndarray
    sigma: np.ndarray

    @property
    def n_tokens(self) -> int:
        return int(self.token_logprobs.size)


def length_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length, longest first (an out-of-memory error shows up at once)."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    return [order[s : s + batch_size] for s in range(0, len(order), batch_size)]


def _pad(seqs: list[list[int]], value: int, device: torch.device) -> torch.Tensor:
    width = max(len(s) for s in seqs)
    out = torch.full((len(seqs), width), value, dtype=torch.long)
    for r, s in enumerate(seqs):
        out[r, : len(s)] = torch.tensor(s, dtype=torch.long)
    return out.to(device)


def left_pad(seqs: list[list[int]], pad_id: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, attention mask) of ``seqs`` padded on the left to the longest."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for r, s in enumerate(seqs):
        ids[r, width - len(s) :] = torch.tensor(s, dtype=torch.long)
        mask[r, width - len(s) :] = 1
    return ids.to(device), mask.to(device)


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter."""
    return next(model.parameters()).device


def _moments(logp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, variance) of log p under p over the last axis: Σ p·log p and Σ p·(log p)² − mean² (Min-K%++)."""
    p = logp.exp()
    mu = (p * logp).sum(-1)
    return mu, (p * logp.square()).sum(-1) - mu.square()


def scores_at(
    model: nn.Module, selected: torch.Tensor, targets: torch.Tensor, rows: torch.Tensor, n_rows: int,
    index: torch.Tensor | None = None, moments: torch.Tensor | None = None,
) -> list[SeqScore]:
    """:class:`SeqScore` of ``n_rows`` sequences from the hidden states ``selected[k]`` that predict ``targets[k]``
    (answer token k of row ``rows[k]``, rows in order): the LM head at those positions only, a chunk at a time.

    With ``index``, token k is predicted by ``selected[index[k]]`` instead: the head (log-softmax, argmax, mean and
    variance over the vocabulary) runs once per row of ``selected`` however many tokens read it.

    ``moments`` (bool per token, default all): the tokens whose ``mu`` / ``sigma`` are computed; NaN for the others
    unless they read the same row of ``selected`` as one that asked."""
    device = selected.device
    head = output_head(model)
    vocab = getattr(head, "out_features", None) or getattr(getattr(head, "weight", None), "shape", [0])[0]
    chunk = max(16, min(CHUNK_TOKENS, CHUNK_ELEMENTS // vocab)) if vocab else CHUNK_TOKENS
    n_sel = selected.shape[0]
    logp = selected.new_zeros(targets.shape[0], dtype=torch.float32)
    top = torch.zeros(n_sel, dtype=torch.long, device=device)
    mu = selected.new_zeros(n_sel, dtype=torch.float32)
    sigma = selected.new_zeros(n_sel, dtype=torch.float32)
    need = None  # rows of ``selected`` whose moments are computed (None: all)
    if moments is not None:
        need = torch.zeros(n_sel, dtype=torch.bool, device=device)
        need[(index if index is not None else torch.arange(n_sel, device=device))[moments.to(device)]] = True
        mu.fill_(float("nan"))
        sigma.fill_(float("nan"))
    for s in range(0, n_sel, chunk):
        e = min(s + chunk, n_sel)
        vocab_logp = F.log_softmax(head(selected[s:e]).float(), dim=-1)
        if index is None:
            logp[s:e] = vocab_logp.gather(1, targets[s:e, None])[:, 0]
        else:
            k = ((index >= s) & (index < e)).nonzero(as_tuple=True)[0]
            logp[k] = vocab_logp[index[k] - s, targets[k]]
        top[s:e] = vocab_logp.argmax(dim=-1)
        if need is None:
            mu[s:e], sigma[s:e] = _moments(vocab_logp)
        elif (k := need[s:e].nonzero(as_tuple=True)[0]).numel():
            mu[s + k], sigma[s + k] = _moments(vocab_logp[k])
    if index is not None:
        top, mu, sigma = top[index], mu[index], sigma[index]
    hits = top == targets
    mu_np, sigma_np = mu.cpu().numpy(), sigma.cpu().numpy()
    counts = torch.bincount(rows, minlength=n_rows).tolist()
    nll_sum = (-logp).new_zeros(n_rows).index_add(0, rows, -logp)
    avg = nll_sum / torch.tensor(counts, dtype=torch.float32, device=device)
    prob = torch.exp(-avg)
    logp_np, hits_np = logp.cpu().numpy(), hits.cpu().numpy()
    avg_l, prob_l = avg.tolist(), prob.tolist()
    out, start = [], 0
    for r, n in enumerate(counts):
        part = slice(start, start + n)
        out.append(SeqScore(avg_l[r], prob_l[r], logp_np[part], hits_np[part], mu_np[part], sigma_np[part]))
        start += n
    return out


@torch.no_grad()
def score_batch(model: nn.Module, input_ids: list[list[int]], labels: list[list[int]], pad_id: int,
                pad_masking: str = "position") -> list[SeqScore]:
    """:class:`SeqScore` of each (input_ids, labels) pair, in order, from one right-padded forward pass.

    ``pad_masking="token"``: open-unlearning's batch (:mod:`baldro.core.padmask`): the mask hides every token equal
    to ``pad_id`` and positions are ``0..T-1``, as its ``model(**batch)`` call gets them."""
    device = model_device(model)
    ids = _pad(input_ids, pad_id, device)
    lab = _pad(labels, IGNORE_INDEX, device)
    if pad_masking == "token":
        hidden = final_hidden_states(model, ids, token_mask(ids, pad_id), position_ids=arange_positions(ids))
    else:
        hidden = final_hidden_states(model, ids, _pad([[1] * len(s) for s in input_ids], 0, device))
    rows, cols, targets = answer_positions(lab)
    return scores_at(model, hidden[rows, cols], targets, rows, len(input_ids))


def score_sequences(
    model: nn.Module,
    input_ids: Sequence[list[int]],
    labels: Sequence[list[int]],
    pad_id: int,
    batch_size: int = 32,
    desc: str | None = None,
    progress: bool = True,
    pad_masking: str = "position",
) -> list[SeqScore]:
    """:class:`SeqScore` for every sequence (same order as given), batched by length (``pad_masking``: see
    :func:`score_batch`)."""
    return by_length_batches(
        [len(s) for s in input_ids], batch_size,
        lambda batch: score_batch(model, [input_ids[i] for i in batch], [labels[i] for i in batch], pad_id,
                                  pad_masking),
        desc, progress)


def by_length_batches(lengths: Sequence[int], batch_size: int, score: Callable[[list[int]], Sequence[Any]],
                      desc: str | None = None, progress: bool = True) -> list[Any]:
    """``score(batch)`` over :func:`length_batches` of the items, results put back in the items' order."""
    out: list[Any] = [None] * len(lengths)
    for batch in item_batches(length_batches(lengths, batch_size), desc, progress, "rows"):
        for i, sc in zip(batch, score(batch)):
            out[i] = sc
    return out
