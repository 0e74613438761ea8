"""Score every answer of many questions in a few packed passes: each question's prompt once, its answers as a tree.

TOFU scores each question with up to seven answers (answer, paraphrased answer, five perturbed answers) that often
begin alike (a perturbed answer is usually the paraphrase with a detail swapped). :mod:`.prefix_scoring` runs a
batch's prompts once and then one right-padded pass per variant; here:

* the answer tokens of a question form a prefix tree (trie): a token sequence shared by several variants' beginnings
  is one node per token, run once; a node sits at position ``n_prompt + depth`` and attends to its prompt and to its
  ancestors only ("tree attention" as in speculative decoding, e.g. SpecInfer, Miao et al., 2024), so its hidden
  state is the one the full sequence ``prompt + variant`` gives at that position;
* each question (prompt, then its tree) is a segment; segments are packed first-fit into rows as long as the
  longest segment, and a 4-D attention mask keeps every segment to itself (causal inside the prompt), positions
  restarting at 0 per segment — one forward pass per ``batch_size`` rows, no cache, almost no padding;
* the LM head runs once per node and at each prompt's last position; every variant's token ``t`` reads its
  log-probability, greedy hit, mean and variance from the node holding its first ``t`` tokens.

Same :class:`SeqScore` as a full-sequence pass up to float summation order (tested ≤ 1e-5 relative on CPU in
float32; other kernels, e.g. bf16 on a GPU, may round differently).
:func:`.prefix_scoring.score_prefixed` uses it for models that take a custom 4-D mask through ``sdpa`` or ``eager``
attention (:func:`supports_tree_scoring`) and its per-variant passes otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from baldro.core.sequence import cached_hidden_states, has_lean_head
from baldro.evaluation.kv_cache import cache_argument, supports_growing_cache
from baldro.evaluation.progress import item_batches
from baldro.evaluation.scoring import SeqScore, model_device, scores_at

_MASKS = ("sdpa", "eager")  # attention implementations that apply a 4-D mask as given (bool / additive float)


def _attn_implementation(model: nn.Module) -> str | None:
    config = getattr(model, "config", None)
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    return getattr(text, "_attn_implementation", None)


def _uses_alibi(model: nn.Module) -> bool:
    """ALiBi models (Falcon ``alibi=True``, …) build their bias from a 2-D mask and column indices, not from
    ``position_ids``: packed segments would get the wrong bias (Falcon's forward even fails on a 4-D mask)."""
    config = getattr(model, "config", None)
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    return bool(getattr(text, "alibi", False) or getattr(text, "use_alibi", False))


def supports_tree_scoring(model: nn.Module) -> bool:
    """Whether ``model`` can be scored by :func:`score_tree_batch`: a growing cache, the lean LM head, an attention
    implementation that applies a custom 4-D mask (``sdpa``, ``eager``), and positions from ``position_ids`` (no
    ALiBi)."""
    return (supports_growing_cache(model) and has_lean_head(model) and _attn_implementation(model) in _MASKS
            and not _uses_alibi(model))


class _Trie:
    """The answer-input tokens of one row (each variant without its last token) as a prefix tree. ``sources[v][t]``
    is the node whose hidden state predicts token ``t`` of variant ``v`` (−1: the prompt's last position)."""

    def __init__(self, answers: Sequence[list[int]]) -> None:
        self.tokens: list[int] = []
        self.parents: list[int] = []
        self.depths: list[int] = []
        children: dict[tuple[int, int], int] = {}
        self.sources: list[list[int]] = []
        for answer in answers:
            node, src = -1, [-1]
            for token in answer[:-1]:
                child = children.get((node, token))
                if child is None:
                    child = children[(node, token)] = len(self.tokens)
                    self.tokens.append(token)
                    self.parents.append(node)
                    self.depths.append(self.depths[node] + 1 if node >= 0 else 0)
                node = child
                src.append(node)
            self.sources.append(src)

    def ancestors(self) -> np.ndarray:
        """``[n, n]`` bool: node i sees node j (j an ancestor of i, or i itself)."""
        out = np.zeros((len(self.tokens), len(self.tokens)), dtype=bool)
        for i, parent in enumerate(self.parents):
            if parent >= 0:
                out[i] = out[parent]
            out[i, i] = True
        return out


def pack(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """First-fit decreasing: item indices grouped into rows whose lengths add up to at most ``capacity``."""
    rows: list[list[int]] = []
    room: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)):
        r = next((r for r, free in enumerate(room) if free >= lengths[i]), None)
        if r is None:
            rows.append([])
            room.append(capacity)
            r = len(rows) - 1
        rows[r].append(i)
        room[r] -= lengths[i]
    return rows


def _row_inputs(prompts: list[list[int]], tries: list[_Trie], width: int, pad_id: int):
    """(tokens, positions, sees, offsets) of one packed row of segments ``prompt + trie nodes``."""
    tokens = np.full(width, pad_id, dtype=np.int64)
    positions = np.zeros(width, dtype=np.int64)
    sees = np.zeros((width, width), dtype=bool)
    offsets, o = [], 0
    for prompt, trie in zip(prompts, tries):
        n_p, n_t = len(prompt), len(trie.tokens)
        offsets.append(o)
        tokens[o : o + n_p] = prompt
        tokens[o + n_p : o + n_p + n_t] = trie.tokens
        positions[o : o + n_p] = np.arange(n_p)
        positions[o + n_p : o + n_p + n_t] = n_p + np.asarray(trie.depths, dtype=np.int64)
        sees[o : o + n_p, o : o + n_p] = np.tril(np.ones((n_p, n_p), dtype=bool))
        sees[o + n_p : o + n_p + n_t, o : o + n_p] = True
        sees[o + n_p : o + n_p + n_t, o + n_p : o + n_p + n_t] = trie.ancestors()
        o += n_p + n_t
    sees[range(o, width), range(o, width)] = True  # padding sees itself: no empty softmax row
    return tokens, positions, sees, offsets


def _mask(model: nn.Module, sees: torch.Tensor) -> torch.Tensor:
    """The 4-D mask as the attention implementation applies it: bool for sdpa, additive for eager."""
    if _attn_implementation(model) == "eager":
        dtype = next(model.parameters()).dtype
        return torch.zeros(sees.shape, dtype=dtype, device=sees.device).masked_fill(~sees, torch.finfo(dtype).min)
    return sees


@torch.no_grad()
def score_packed(
    model: nn.Module,
    prompts: Sequence[list[int]],
    answers: Sequence[list[list[int]]],
    pad_id: int,
    batch_size: int = 32,
    desc: str | None = None,
    progress: bool = True,
    moments: Sequence[bool] | None = None,
) -> list[list[SeqScore]]:
    """``out[i][v]``: :class:`SeqScore` of answer ``answers[i][v]`` (tokens after the prompt, EOS included, at least
    one) to prompt ``prompts[i]`` (see the module docstring); ``batch_size`` packed rows a forward pass.
    ``moments[v]``: whether variant ``v``'s ``mu`` / ``sigma`` are computed (default all; otherwise NaN, except at
    tree nodes it shares with a variant that asked, e.g. its first token, predicted from the prompt's last position)."""
    if not prompts:
        return []
    device = model_device(model)
    tries = [_Trie(row) for row in answers]
    lengths = [len(p) + len(t.tokens) for p, t in zip(prompts, tries)]
    width = max(lengths)
    rows = pack(lengths, width)
    out: list[list[SeqScore]] = [[] for _ in prompts]
    batches = [rows[start : start + batch_size] for start in range(0, len(rows), batch_size)]
    for batch in item_batches(batches, desc, progress, "questions", size=lambda b: sum(len(row) for row in b)):
        parts = [_row_inputs([prompts[i] for i in row], [tries[i] for i in row], width, pad_id) for row in batch]
        tokens = torch.from_numpy(np.stack([p[0] for p in parts])).to(device)
        positions = torch.from_numpy(np.stack([p[1] for p in parts])).to(device)
        sees = torch.from_numpy(np.stack([p[2] for p in parts]))[:, None].to(device)
        hidden = cached_hidden_states(model, tokens, _mask(model, sees), positions, None, cache_argument(model) or "")
        hidden = hidden.reshape(len(batch) * width, -1)
        index, targets, seq, owners, want = [], [], [], [], []
        for r, (row, part) in enumerate(zip(batch, parts)):
            for i, o in zip(row, part[3]):
                base, last = r * width + o + len(prompts[i]), r * width + o + len(prompts[i]) - 1
                for v, (answer, src) in enumerate(zip(answers[i], tries[i].sources)):
                    index += [last if s < 0 else base + s for s in src]
                    targets += answer
                    want += [moments is None or bool(moments[v])] * len(answer)
                    seq += [len(owners)] * len(answer)
                    owners.append(i)
        used, inverse = torch.unique(torch.tensor(index, device=device), return_inverse=True)
        scores = scores_at(model, hidden[used], torch.tensor(targets, device=device),
                           torch.tensor(seq, device=device), len(owners), index=inverse,
                           moments=None if moments is None else torch.tensor(want, device=device))
        for i, sc in zip(owners, scores):
            out[i].append(sc)
    return out
