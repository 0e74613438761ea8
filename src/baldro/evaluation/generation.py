"""Batched greedy generation: prompts sorted by length, left padding, KV cache, cut at EOS and stop strings.

Decoding follows open-unlearning: ``do_sample=False``, the continuation decoded with ``skip_special_tokens=True``,
cut at the first EOS and at any stop string, then stripped.

Where the model allows it (:func:`lean_greedy_supported`: a growing KV cache, no stop strings, no logits processor in
the model's generation config) the tokens come from :func:`greedy_tokens`, a plain loop that makes the same forward
calls as transformers' greedy ``generate`` (same inputs, positions, masks, last-position logits, argmax) without its
per-step machinery, keeps keys/values in a :class:`~baldro.evaluation.kv_cache.GrowingCache` (no O(n²) copying),
runs the prompts in groups of similar length so that the decoder does not run on the batch's left padding, and drops
finished rows (those that produced EOS) from the batch at once, moving the last live rows into their slots. Its tokens
are those of ``generate`` (tested on CPU in float32; batch shapes differ from ``generate``'s, so kernels that round
differently by batch size or padding, e.g. bf16 on a GPU, could flip a near-tie); elsewhere ``generate`` itself runs.
It also takes drafts of the continuations (``drafted``, ``drafts``) and verifies them as speculative decoding does:
a draft saves the decoding steps of the tokens it got right and changes no token.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from baldro.core.padmask import token_mask
from baldro.evaluation.kv_cache import assemble_prompts, cache_argument, growing_cache, supports_growing_cache
from baldro.evaluation.progress import ItemProgress
from baldro.evaluation.scoring import length_batches, model_device

# generation-config fields that add a logits processor (or change the stopping rule) when set: the lean loop applies
# none of them, so a model whose config sets one is decoded by ``generate``.
_NEUTRAL = {
    "repetition_penalty": (None, 1.0), "encoder_repetition_penalty": (None, 1.0), "no_repeat_ngram_size": (None, 0),
    "encoder_no_repeat_ngram_size": (None, 0), "bad_words_ids": (None,), "min_length": (None, 0),
    "min_new_tokens": (None, 0), "forced_bos_token_id": (None,), "forced_eos_token_id": (None,),
    "suppress_tokens": (None,), "begin_suppress_tokens": (None,), "sequence_bias": (None,),
    "exponential_decay_length_penalty": (None,), "renormalize_logits": (None, False), "num_beams": (None, 1),
    "guidance_scale": (None, 1.0), "max_time": (None,), "stop_strings": (None,),
}


def cut_at_stops(text: str, stops: Sequence[str]) -> str:
    """``text`` up to the first occurrence of each stop string (applied in order), stripped."""
    for word in stops:
        if word and word in text:
            text = text.split(word)[0]
    return text.strip()


def lean_greedy_supported(model: nn.Module, stop_strings: Sequence[str] = ()) -> bool:
    """Whether :func:`greedy_tokens` reproduces ``model.generate(do_sample=False)`` for this model: a growing cache,
    ``logits_to_keep`` in its forward, no stop strings and no logits processor in its generation config."""
    if stop_strings or not supports_growing_cache(model):
        return False
    if "logits_to_keep" not in inspect.signature(model.forward).parameters:
        return False
    config = getattr(model, "generation_config", None)
    return all(getattr(config, name, None) in neutral for name, neutral in _NEUTRAL.items())


def prefill_groups(lengths: Sequence[int], call_tokens: int) -> list[list[int]]:
    """Rows grouped for the prompt prefill: consecutive rows in order of decreasing length, cut where it minimises
    ``Σ_groups (call_tokens + rows × longest)`` — each forward call costs about ``call_tokens`` token positions of
    fixed overhead, and each row of a group is padded to the group's longest (dynamic programming, O(n²))."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    n = len(order)
    best = [0] + [0] * n  # best[k]: cost of the first k rows of ``order``
    cut = [0] * (n + 1)
    for k in range(1, n + 1):
        best[k], cut[k] = min((best[j] + call_tokens + (k - j) * lengths[order[j]], j) for j in range(k))
    groups, k = [], n
    while k:
        groups.append(order[cut[k] : k])
        k = cut[k]
    return groups[::-1]


def prefill_call_tokens(model: nn.Module) -> int:
    """A forward call's fixed cost in token positions of the model's compute, on CPU: ``GEMM_CALL_TOKENS`` (a matrix
    product over few rows runs below peak) plus the Python dispatch, ``CALL_OVERHEAD_FLOP × (1 + layers) /
    (2 · parameters)`` (≈ 0.1 ms per layer at ≈ 30 GFLOP/s). Measured on SmolLM2-135M-Instruct (64 TOFU prompts of
    27–54 tokens, one thread): one padded call 9.9 s, 17 exact-length groups 7.0 s, 6 groups (this rule) 6.2 s. On a
    GPU, where a small batch costs launches rather than FLOPs: one call for the whole batch."""
    if model_device(model).type != "cpu":
        return 1 << 30
    config = getattr(model, "config", None)
    layers = getattr(config, "num_hidden_layers", None) or 1
    params = sum(p.numel() for p in model.parameters())
    return GEMM_CALL_TOKENS + round(CALL_OVERHEAD_FLOP * (1 + layers) / (2 * params))


GEMM_CALL_TOKENS = 32
CALL_OVERHEAD_FLOP = 3e6


def _prefill(model: nn.Module, input_ids: torch.Tensor, lengths: list[int], reserve: int, arg: str,
             groups: list[list[int]], drafted: list[int]) -> tuple[Any, torch.Tensor]:
    """(cache, greedy tokens) of left-padded ``input_ids`` (row ``r``'s prompt = its last ``lengths[r]`` ids): each
    group of rows (:func:`prefill_groups`) runs with only its own padding, their keys/values assembled into one cache
    of ``input_ids.shape[1]`` positions (zeros where padding). Greedy tokens as :func:`_prefill_one`'s, right-aligned
    in ``max(drafted) + 1`` columns (a group keeps the logits of its own longest draft + 1 positions)."""
    width = input_ids.shape[1]
    greedy = torch.full((len(lengths), max(drafted) + 1), -1, dtype=torch.long, device=input_ids.device)
    parts = []
    for group in groups:
        n = max(lengths[r] for r in group)
        ids = input_ids[group, width - n :]
        mask = torch.zeros_like(ids)
        for g, r in enumerate(group):
            mask[g, n - lengths[r] :] = 1
        part = growing_cache(model, reserve=n)
        keep = max(drafted[r] for r in group) + 1
        greedy[group, greedy.shape[1] - keep :] = _prefill_one(model, ids, mask, keep, arg, part)
        parts.append((group, part))
    return assemble_prompts(parts, len(lengths), width, reserve), greedy


def _prefill_one(model: nn.Module, ids: torch.Tensor, mask: torch.Tensor, keep: int, arg: str,
                 cache: Any) -> torch.Tensor:
    """One prefill call of left-padded ``ids`` into ``cache``: the greedy token after each of the last ``keep``
    positions (``[rows, keep]``), i.e. the argmax in float32 of the raw last-layer logits there, as the decoding
    steps take it. Positions ``cumsum(mask) − 1`` (0 on padding); the mask dropped when it has no padding."""
    positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)
    logits = model(input_ids=ids, attention_mask=None if bool((mask == 1).all()) else mask, position_ids=positions,
                   use_cache=True, logits_to_keep=keep, **{arg: cache}).logits
    step = max(1, ARGMAX_CHUNK // max(1, keep * logits.shape[-1]))  # rows per float32 copy of the logits
    return torch.cat([logits[i : i + step, -keep:].float().argmax(dim=-1) for i in range(0, len(ids), step)])


ARGMAX_CHUNK = 1 << 26  # logits converted to float32 at a time (256 MiB)
LOGIT_ELEMENTS = 1 << 27  # logits one prefill call may return (rows × kept positions × vocabulary; 256 MiB in bf16)


def logit_groups(groups: list[list[int]], drafted: Sequence[int], vocab: int) -> list[list[int]]:
    """``groups`` cut into runs of consecutive rows whose prefill returns at most ``LOGIT_ELEMENTS`` logits
    (``rows × (longest draft + 1) × vocab``; at least one row a call): a draft keeps the logits of all its positions."""
    out = []
    for group in groups:
        run: list[int] = []
        for r in group:
            if run and (len(run) + 1) * (max(drafted[q] for q in [*run, r]) + 1) * vocab > LOGIT_ELEMENTS:
                out.append(run)
                run = []
            run.append(r)
        out.append(run)
    return out


def _vocab_size(model: nn.Module) -> int:
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    weight = getattr(head, "weight", None)
    return int(weight.shape[0]) if weight is not None else int(getattr(model.config, "vocab_size", 1))


def verify_drafts(input_ids: torch.Tensor, greedy: torch.Tensor, drafted: Sequence[int],
                  limits: Sequence[int]) -> tuple[list[int], torch.Tensor]:
    """Speculative decoding's check of the drafts: row ``r``'s last ``drafted[r]`` input tokens are a draft of its
    continuation, ``greedy[r]`` the prefill's greedy token after each of its last ``greedy.shape[1]`` positions
    (right-aligned), so column ``K − 1 − drafted[r] + k`` predicts draft token ``k``. Returns (accepted: the length
    ``a`` of the longest draft prefix that equals those predictions, at most ``limits[r] − 1``; each row's next
    token: the prediction after the accepted prefix, column ``K − 1 − drafted[r] + a``)."""
    k_cols, width = greedy.shape[1], input_ids.shape[1]
    pred, ids = greedy.tolist(), input_ids[:, width - (k_cols - 1) :].tolist() if k_cols > 1 else [[]] * len(greedy)
    accepted, first = [], []
    for r, n in enumerate(drafted):
        start = k_cols - 1 - n  # the column that predicts draft token 0 (the last prompt token's)
        a = 0
        while a < min(n, limits[r] - 1) and pred[r][start + a] == ids[r][start + a]:
            a += 1
        accepted.append(a)
        first.append(pred[r][start + a])
    return accepted, torch.tensor(first, dtype=torch.long, device=greedy.device)


@torch.no_grad()
def greedy_tokens(
    model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor, max_new_tokens: int, eos_id: int | None,
    compact_at: float = 0.0, group_prefill: bool = True, budgets: Sequence[int] | None = None,
    drafted: Sequence[int] | None = None, on_done: Callable[[int], None] | None = None,
) -> list[list[int]]:
    """Greedy continuation of each left-padded row, EOS and what follows it excluded (see the module docstring).

    As ``generate``: positions ``cumsum(mask) − 1`` (0 on padding) then one more per step; the mask dropped when it
    has no padding; logits of the last position only (with drafts: of the last ``max(drafted) + 1``), argmax in
    float32; a row stops at EOS or after ``max_new_tokens``. ``attention_mask`` marks each row's prompt (left padding, position masking).

    ``group_prefill``: the prompts run in groups of similar length (:func:`_prefill`), so the decoder does not run on
    the batch's left padding; their keys/values form one left-padded cache (padding masked) for the decoding steps.
    Otherwise the padded batch runs as one call, as ``generate`` does. Either way a call returns at most
    ``LOGIT_ELEMENTS`` logits (:func:`logit_groups`; only long drafts of a large vocabulary need more calls).

    Finished rows leave the batch once they are at least ``compact_at`` of the rows still in it (default 0: at once):
    :meth:`~baldro.evaluation.kv_cache.GrowingCache.compact_rows` moves the last live rows into their slots, copying
    the moved rows only (one row's cache ≈ one decoding step of that row). A finished row's further outputs are
    ignored; the others are unaffected.

    ``budgets``: row ``r`` stops after ``min(budgets[r], max_new_tokens)`` new tokens; each at least 1.

    ``drafted`` (speculative decoding): the last ``drafted[r]`` tokens of row ``r`` are not prompt but a guess of its
    continuation (a draft). The prefill keeps the logits of each row's last ``max(drafted) + 1`` positions and
    :func:`verify_drafts` accepts the draft up to its first token that differs from the prefill's own greedy token at
    that position (or up to the row's budget − 1); the token there is the prefill's greedy token, and decoding goes on
    from it. The rejected draft positions stay in the cache but leave the attention mask (mask 0: no query attends to
    them, and positions, which follow the mask's sums, count the accepted tokens only). Every token returned —
    accepted draft tokens included — is thus the argmax of the logits this run computed at its position, given the
    tokens before it: greedy decoding whatever the draft, which only saves decoding steps where it is right.

    ``on_done(k)``: called after each decoding step in which ``k`` rows finished (progress display).
    """
    n_rows = input_ids.shape[0]
    limits = [max_new_tokens] * n_rows if budgets is None else [min(b, max_new_tokens) for b in budgets]
    if max(limits, default=0) < 1:
        return [[] for _ in range(n_rows)]
    if min(limits) < 1:
        raise ValueError("every row needs a budget of at least one new token")
    max_new_tokens = max(limits)
    drafted = [0] * n_rows if drafted is None else [int(n) for n in drafted]
    lengths = attention_mask.long().sum(-1).tolist()
    if len(drafted) != n_rows or any(n < 0 or n >= length for n, length in zip(drafted, lengths)):
        raise ValueError(f"drafted must give each of the {n_rows} rows a draft shorter than its input, got {drafted}")
    width = input_ids.shape[1]
    arg = cache_argument(model)
    padded = not bool((attention_mask == 1).all())
    groups = prefill_groups(lengths, prefill_call_tokens(model)) if group_prefill and padded else [list(range(n_rows))]
    groups = logit_groups(groups, drafted, _vocab_size(model))
    if len(groups) > 1:
        cache, greedy = _prefill(model, input_ids, lengths, width + max_new_tokens, arg, groups, drafted)
    else:
        cache = growing_cache(model, reserve=width + max_new_tokens)
        greedy = _prefill_one(model, input_ids, attention_mask, max(drafted) + 1, arg, cache)
    accepted, nxt = verify_drafts(input_ids, greedy, drafted, limits)
    mask = attention_mask
    if any(a < n for a, n in zip(accepted, drafted)):  # the rejected draft positions leave the mask
        mask = attention_mask.clone()
        for r, (a, n) in enumerate(zip(accepted, drafted)):
            mask[r, width - n + a :] = 0
    rest = decode_from_prompts(model, cache, nxt, mask, max_new_tokens, eos_id, compact_at,
                               [lim - a for lim, a in zip(limits, accepted)], on_done)
    heads = input_ids[:, width - max(drafted) :].tolist() if max(drafted) else [[]] * n_rows
    return [[*head[len(head) - n :][:a], *tail] if n else tail
            for head, n, a, tail in zip(heads, drafted, accepted, rest)]


def decode_from_prompts(model: nn.Module, cache: Any, first: torch.Tensor, attention_mask: torch.Tensor,
                        max_new_tokens: int, eos_id: int | None, compact_at: float = 0.0,
                        budgets: Sequence[int] | None = None,
                        on_done: Callable[[int], None] | None = None) -> list[list[int]]:
    """The decoding steps of :func:`greedy_tokens` after the prefill: ``cache`` holds the left-padded prompts
    (``attention_mask`` marks them), ``first`` is each row's first generated token; row ``r`` stops at EOS or after
    ``budgets[r]`` tokens (default ``max_new_tokens``). ``on_done(k)``: ``k`` rows finished at this step."""
    n_rows = len(first)
    limit = [max_new_tokens] * n_rows if budgets is None else [min(b, max_new_tokens) for b in budgets]
    if min(limit, default=1) < 1:
        raise ValueError("every row needs a budget of at least one new token")
    arg = cache_argument(model)
    lengths = attention_mask.long().sum(-1)
    mask = None if bool((attention_mask == 1).all()) else attention_mask
    positions, nxt = lengths[:, None] - 1, first
    out: list[list[int]] = [[] for _ in range(n_rows)]
    rows = list(range(n_rows))  # the item of each batch row
    done = [False] * n_rows  # per batch row
    n_done = 0
    for step in range(max_new_tokens):
        if step:
            logits = model(input_ids=nxt[:, None], attention_mask=mask, position_ids=positions, use_cache=True,
                           logits_to_keep=1, **{arg: cache}).logits
            nxt = logits[:, -1, :].float().argmax(dim=-1)
        done_before = n_done
        for j, token in enumerate(nxt.tolist()):
            if done[j]:
                continue
            if token == eos_id:
                done[j] = True
                n_done += 1
            else:
                out[rows[j]].append(token)
                if step + 1 >= limit[rows[j]]:
                    done[j] = True
                    n_done += 1
        if on_done is not None and n_done > done_before:
            on_done(n_done - done_before)
        if n_done == len(rows) or step == max_new_tokens - 1:
            break
        if n_done and n_done >= compact_at * len(rows):
            order = cache.compact_rows([j for j in range(len(rows)) if not done[j]])
            index = torch.tensor(order, device=first.device)
            nxt, positions = nxt[index], positions[index]
            mask = mask[index] if mask is not None else None
            rows, done, n_done = [rows[j] for j in order], [False] * len(order), 0
        if mask is not None:
            mask = torch.cat([mask, mask.new_ones((len(rows), 1))], dim=-1)
        positions = positions + 1
    return out


@torch.no_grad()
def generate_greedy(
    model: nn.Module,
    tokenizer: Any,
    prompts: Sequence[list[int]],
    max_new_tokens: int,
    pad_id: int,
    batch_size: int = 32,
    stop_strings: Sequence[str] = (),
    desc: str | None = None,
    progress: bool = True,
    pad_masking: str = "position",
    drafts: Sequence[Sequence[int] | None] | None = None,
) -> list[str]:
    """Greedy continuations of token-id prompts (same order as given), decoded and cut.

    ``pad_masking="token"``: transformers' ``generate`` with open-unlearning's mask (every token equal to ``pad_id``
    hidden, prompt tokens included; positions from that mask, as ``generate`` derives them), never the lean loop.

    ``drafts`` (lean loop only; ignored where ``generate`` runs): per prompt, a guess of the tokens its greedy
    continuation begins with — e.g. the leading answer tokens a scoring pass's argmax predicted (:mod:`.answer_drafts`).
    Verified as speculative decoding verifies a draft (:func:`greedy_tokens`, ``drafted``): the prompt is prefilled
    with its draft in one call, the draft is kept up to its first token that is not the prefill's own greedy choice
    there, and decoding goes on from that position — so a right draft saves its decoding steps and a wrong one changes
    nothing. A draft is cut after its first EOS and at ``max_new_tokens`` tokens; its last token, when it is EOS or the
    budget's last, is checked by the prefill's prediction after the others (not fed in)."""
    eos = tokenizer.eos_token_id
    device = model_device(model)
    out: list[str] = [""] * len(prompts)
    lean = pad_masking != "token" and lean_greedy_supported(model, stop_strings)
    heads = _draft_inputs(drafts, len(prompts), max_new_tokens, eos) if lean and drafts is not None else None
    seqs = [[*p, *heads[i][0]] if heads is not None else p for i, p in enumerate(prompts)]
    batches = length_batches([len(s) for s in seqs], batch_size)
    if heads is not None:  # complete drafts apart: if right, their rows need the prefill only, and no decoding steps
        parts = [[i for i in range(len(seqs)) if heads[i][1] == complete] for complete in (True, False)]
        batches = [[part[k] for k in b] for part in parts for b in length_batches([len(seqs[i]) for i in part],
                                                                                    batch_size)]
    shown = ItemProgress(len(prompts), desc or "generating", "questions", progress)
    try:  # the line ends even when a batch fails (a terminal is left on a fresh line)
        for batch in batches:
            finished = [0]  # the batch's rows reported by the decoding loop as they stop

            def on_done(k: int, finished: list[int] = finished) -> None:
                finished[0] += k
                shown.advance(k)

            width = max(len(seqs[i]) for i in batch)
            ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for r, i in enumerate(batch):
                p = seqs[i]
                ids[r, width - len(p) :] = torch.tensor(p, dtype=torch.long)
                mask[r, width - len(p) :] = 1
            if pad_masking == "token":
                mask = token_mask(ids, pad_id)
            if lean:
                drafted = [len(heads[i][0]) for i in batch] if heads is not None else None
                rows = greedy_tokens(model, ids.to(device), mask.to(device), max_new_tokens, eos, drafted=drafted,
                                     on_done=on_done)
                for i, tokens in zip(batch, rows):
                    out[i] = tokenizer.decode(tokens, skip_special_tokens=True).strip()
                shown.advance(len(batch) - finished[0])
                continue
            kwargs: dict[str, Any] = {}
            if stop_strings:
                kwargs.update(stop_strings=list(stop_strings), tokenizer=tokenizer)
            gen = model.generate(
                input_ids=ids.to(device),
                attention_mask=mask.to(device),
                do_sample=False,
                max_new_tokens=max_new_tokens,
                pad_token_id=pad_id,
                eos_token_id=eos,
                use_cache=True,
                **kwargs,
            )
            for r, i in enumerate(batch):
                new = gen[r, width:].tolist()
                if eos is not None and eos in new:
                    new = new[: new.index(eos)]
                text = tokenizer.decode(new, skip_special_tokens=True)
                out[i] = cut_at_stops(text, stop_strings)
            shown.advance(len(batch))
    finally:
        shown.close()
    return out


def _draft_inputs(drafts: Sequence[Sequence[int] | None], n: int, max_new_tokens: int,
                  eos: int | None) -> list[tuple[list[int], bool]]:
    """(the draft tokens to prefill after the prompt, whether the draft is a complete continuation) of each draft: the
    draft cut after its first EOS and at ``max_new_tokens`` tokens; complete when it then ends in EOS or has the
    budget's tokens, and its last token left out (the prefill's prediction after the others checks it)."""
    if len(drafts) != n:
        raise ValueError(f"{len(drafts)} drafts for {n} prompts")
    heads = []
    for draft in drafts:
        head = list(draft or [])[:max_new_tokens]
        if eos is not None and eos in head:
            head = head[: head.index(eos) + 1]
        complete = bool(head) and (head[-1] == eos or len(head) == max_new_tokens)
        heads.append((head[:-1] if complete else head, complete))
    return heads
