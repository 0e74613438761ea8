"""Per-sample sequence statistics of a causal LM on labelled batches.

Labels follow the Hugging Face convention: ``labels[b, t]`` is the token predicted at position ``t`` (the model's
output at ``t - 1`` scores it, the causal shift), and ``-100`` marks positions that carry no loss (prompt, padding).

Two paths give the same numbers (tested to 1e-5 in float32):

* :func:`stats_from_logits` — from full ``[B, T, V]`` logits (simple, but the logits must exist).
* :func:`stats_from_hidden` — the lean path: from the final hidden states ``[B, T, H]``, applying the LM head
  *module* only at answer-token positions, a chunk of tokens at a time, upcasting each chunk to float32. No
  ``[B, T, V]`` float32 tensor is ever built. The "head" is :func:`output_head`: the output-embedding module plus
  whatever the architecture does to the logits after it (soft-capping, scaling; :mod:`baldro.core.lm_head`);
  architectures not known to that module fall back to full logits (one warning per class).

Both return a :class:`SequenceStats` holding the per-token NLL of every answer token (flattened) and the sample it
belongs to, from which per-sample sums and means follow.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from baldro.core.labels import IGNORE_INDEX
from baldro.core.linear_ce import fusable_head, linear_cross_entropy
from baldro.core.lm_head import logit_head

DEFAULT_CHUNK_TOKENS = 1024


@dataclass
class SequenceStats:
    """Answer-token statistics of a batch of ``batch_size`` sequences.

    ``token_nll[k]`` is −log p(y_k) (float32) of the k-th answer token of the batch and ``sample_index[k]`` the row it
    belongs to. ``n_tokens[b]`` counts the answer tokens of row ``b``.
    """

    token_nll: Tensor
    sample_index: Tensor
    n_tokens: Tensor
    batch_size: int

    @property
    def nll_sum(self) -> Tensor:
        """Σ_t −log p(y_t) over each sample's answer tokens, shape [B]."""
        out = self.token_nll.new_zeros(self.batch_size)
        return out.index_add(0, self.sample_index, self.token_nll)

    @property
    def nll_mean(self) -> Tensor:
        """Token-mean NLL per sample, shape [B] (a sample with no answer token gives 0)."""
        return self.nll_sum / self.n_tokens.clamp(min=1).to(self.token_nll.dtype)

    @property
    def logp_sum(self) -> Tensor:
        """log π(y|x) = −Σ_t NLL_t per sample, shape [B]."""
        return -self.nll_sum

    def token_mean(self, token_values: Tensor) -> Tensor:
        """Per-sample mean of a per-token quantity aligned with ``token_nll``, shape [B]."""
        out = token_values.new_zeros(self.batch_size).index_add(0, self.sample_index, token_values)
        return out / self.n_tokens.clamp(min=1).to(token_values.dtype)

    def select(self, rows: Tensor) -> SequenceStats:
        """The statistics of the given rows only (in that order)."""
        rows = rows.to(self.sample_index.device)
        remap = torch.full((self.batch_size,), -1, dtype=torch.long, device=rows.device)
        remap[rows] = torch.arange(rows.numel(), device=rows.device)
        keep = remap[self.sample_index] >= 0
        return SequenceStats(
            token_nll=self.token_nll[keep],
            sample_index=remap[self.sample_index[keep]],
            n_tokens=self.n_tokens[rows],
            batch_size=int(rows.numel()),
        )


def answer_positions(labels: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Rows, source positions (t−1) and target ids of every labelled token after the causal shift."""
    shifted = labels[:, 1:]
    rows, cols = (shifted != IGNORE_INDEX).nonzero(as_tuple=True)
    return rows, cols, shifted[rows, cols]


def _stats(token_nll: Tensor, rows: Tensor, labels: Tensor) -> SequenceStats:
    n_tokens = (labels[:, 1:] != IGNORE_INDEX).sum(dim=1)
    return SequenceStats(token_nll=token_nll, sample_index=rows, n_tokens=n_tokens, batch_size=labels.shape[0])


def stats_from_token_nll(token_nll: Tensor, labels: Tensor) -> SequenceStats:
    """The statistics of a batch from its per-token NLL in :func:`answer_positions` order."""
    return _stats(token_nll, answer_positions(labels)[0], labels)


def stats_from_logits(logits: Tensor, labels: Tensor) -> SequenceStats:
    """Statistics from full logits ``[B, T, V]``; only the answer positions are upcast to float32."""
    rows, cols, targets = answer_positions(labels)
    picked = logits[rows, cols].float()
    token_nll = F.cross_entropy(picked, targets, reduction="none")
    return _stats(token_nll, rows, labels)


def stats_from_hidden(
    hidden: Tensor,
    labels: Tensor,
    lm_head: Callable[[Tensor], Tensor],
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
    fused: bool = True,
    linear: nn.Linear | None = None,
) -> SequenceStats:
    """Lean statistics: the LM head module applied only at answer positions, ``chunk_tokens`` at a time.

    ``lm_head`` is :func:`output_head` (it calls the output-embedding *module*, so that PEFT wrappers and parameter
    sharding (FSDP, DeepSpeed ZeRO-3) see the call, then the architecture's logit post-processing). A plain hook-free
    ``nn.Linear`` head goes through :func:`baldro.core.linear_ce.linear_cross_entropy` instead (same numbers up to
    float32 rounding, far less memory traffic); ``fused=False`` forces the generic path. ``linear``: the head's
    ``nn.Linear`` with its full weight, known fusable by the caller (inside the head's own forward, where the hooks
    that :func:`~baldro.core.linear_ce.fusable_head` refuses have gathered the weight).
    """
    rows, cols, targets = answer_positions(labels)
    selected = hidden[rows, cols]
    if linear is None and fused:
        linear = fusable_head(lm_head)
    if linear is not None:
        token_nll = linear_cross_entropy(selected, linear.weight, linear.bias, targets, chunk_tokens)
        return _stats(token_nll, rows, labels)
    pieces = []
    for start in range(0, selected.shape[0], chunk_tokens):
        chunk_logits = lm_head(selected[start : start + chunk_tokens]).float()
        pieces.append(F.cross_entropy(chunk_logits, targets[start : start + chunk_tokens], reduction="none"))
    token_nll = torch.cat(pieces) if pieces else selected.new_zeros(0, dtype=torch.float32)
    return _stats(token_nll, rows, labels)


def answer_token_kl(
    hidden: Tensor,
    ref_hidden: Tensor,
    labels: Tensor,
    lm_head: Callable[[Tensor], Tensor],
    ref_lm_head: Callable[[Tensor], Tensor],
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
) -> Tensor:
    """KL(π_ref ‖ π_θ) of the next-token distributions at each answer position, flattened like ``token_nll``."""
    rows, cols, _ = answer_positions(labels)
    h, h_ref = hidden[rows, cols], ref_hidden[rows, cols]
    pieces = []
    for start in range(0, h.shape[0], chunk_tokens):
        logp = F.log_softmax(lm_head(h[start : start + chunk_tokens]).float(), dim=-1)
        ref_logp = F.log_softmax(ref_lm_head(h_ref[start : start + chunk_tokens]).float(), dim=-1)
        pieces.append(F.kl_div(logp, ref_logp, log_target=True, reduction="none").sum(-1))
    return torch.cat(pieces) if pieces else h.new_zeros(0, dtype=torch.float32)


def _unwrap(model: nn.Module) -> nn.Module:
    """The innermost transformers model under DDP/FSDP/compile/PEFT wrappers (for finding sub-modules only)."""
    seen = set()
    while id(model) not in seen:
        seen.add(id(model))
        for attr in ("module", "_orig_mod"):
            inner = getattr(model, attr, None)
            if isinstance(inner, nn.Module):
                model = inner
                break
        else:
            if hasattr(model, "get_base_model"):
                model = model.get_base_model()
    return model


def _decoder(model: nn.Module) -> nn.Module:
    """The decoder stack: ``get_decoder()``, or ``base_model`` where transformers < 5 lacks it (e.g. GPT-2 on 4.46)."""
    inner = _unwrap(model)
    get_decoder = getattr(inner, "get_decoder", None)
    decoder = get_decoder() if callable(get_decoder) else None
    return decoder if isinstance(decoder, nn.Module) else inner.base_model


@contextlib.contextmanager
def _capture_decoder_output(model: nn.Module) -> Iterator[dict[str, Tensor]]:
    decoder = _decoder(model)
    captured: dict[str, Tensor] = {}

    def hook(_module: nn.Module, _inputs: object, output: object) -> None:
        captured["hidden"] = output[0] if isinstance(output, tuple) else output.last_hidden_state

    handle = decoder.register_forward_hook(hook)
    try:
        yield captured
    finally:
        handle.remove()


def _forward_kwargs(
    model: nn.Module, attention_mask: Tensor | None, keep_logits: bool = True, position_ids: Tensor | None = None
) -> dict[str, object]:
    """``logits_to_keep=1`` (unless ``keep_logits`` is false) and ``position_ids`` (the given ones, else from the
    attention mask), where the model's forward accepts them."""
    params = inspect.signature(_unwrap(model).forward).parameters
    kwargs: dict[str, object] = {}
    for name in ("logits_to_keep", "num_logits_to_keep"):
        if keep_logits and name in params:
            kwargs[name] = 1
            break
    if "position_ids" in params:
        if position_ids is not None:
            kwargs["position_ids"] = position_ids
        elif attention_mask is not None and attention_mask.dim() == 2:
            kwargs["position_ids"] = position_ids_from_mask(attention_mask)
    return kwargs


def position_ids_from_mask(attention_mask: Tensor) -> Tensor:
    """Positions counted over real tokens only (``cumsum(mask) − 1``, padding clamped to 0).

    Without them a left-padded row's tokens sit at shifted positions: harmless for rotary models (only relative
    positions enter attention) but wrong for absolute position embeddings (GPT-2), which HF does not correct.
    """
    return (attention_mask.long().cumsum(dim=-1) - 1).clamp(min=0)


def final_hidden_states(
    model: nn.Module,
    input_ids: Tensor,
    attention_mask: Tensor | None = None,
    forward_context: Callable[[], AbstractContextManager] | None = None,
    position_ids: Tensor | None = None,
) -> Tensor:
    """Final (normed) hidden states ``[B, T, H]`` of a causal LM, computed through the model's own ``forward`` —
    the features that :func:`output_head` maps to the model's logits.

    The call goes through the outermost wrapper (DDP, FSDP, PEFT) so distributed hooks run; ``labels`` are never
    passed (the model would compute a second loss) and only the last position's logits are computed. With an
    attention mask, ``position_ids`` follow it (:func:`position_ids_from_mask`), so left and right padding give each
    sample the numbers it gets alone; given ``position_ids`` are used as they are (``pad_masking: token``, whose
    mask also hides real tokens, :mod:`baldro.core.padmask`). ``forward_context`` (e.g. ``accelerator.autocast``) wraps the ``forward`` call
    only, as accelerate wraps a prepared model's ``forward``.

    For an architecture whose head the lean path does not reproduce (:func:`baldro.core.lm_head.logit_head` is
    ``None``) the features are the full logits ``[B, T, V]`` and :func:`output_head` is the identity.
    """
    lean = logit_head(_unwrap(model)) is not None
    context = forward_context() if forward_context is not None else contextlib.nullcontext()
    if not lean:
        with context:
            return model(
                input_ids=input_ids,
                attention_mask=attention_mask,
                use_cache=False,
                **_forward_kwargs(model, attention_mask, keep_logits=False, position_ids=position_ids),
            ).logits
    with _capture_decoder_output(model) as captured, context:
        model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            use_cache=False,
            **_forward_kwargs(model, attention_mask, position_ids=position_ids),
        )
    return captured["hidden"]


def cached_hidden_states(
    model: nn.Module,
    input_ids: Tensor,
    attention_mask: Tensor | None,
    position_ids: Tensor,
    cache: object,
    cache_argument: str = "past_key_values",
) -> Tensor:
    """Final (normed) hidden states ``[B, T, H]`` of a forward that attends to the positions already in ``cache``
    and appends its own keys/values to it (``use_cache=True``; the cache is passed as ``cache_argument``).

    ``attention_mask`` covers the cached positions and the new ones (``[B, past + T]``; None = no padding; or a 4-D
    mask ``[B, 1, T, past + T]`` used as given) and ``position_ids`` are the new tokens' positions. ``cache=None``:
    no cache is read or written. Only the last position's logits are computed; the hidden states come from the
    decoder's output, as in :func:`final_hidden_states` (lean head architectures only).
    """
    cache_kwargs = {"use_cache": False} if cache is None else {"use_cache": True, cache_argument: cache}
    with _capture_decoder_output(model) as captured:
        model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            **cache_kwargs,
            **{k: v for k, v in _forward_kwargs(model, None).items() if k != "position_ids"},
        )
    return captured["hidden"]


def has_lean_head(model: nn.Module) -> bool:
    """Whether :func:`final_hidden_states` returns hidden states (the lean head covers the architecture) rather than
    full logits."""
    return logit_head(_unwrap(model)) is not None


def _identity(logits: Tensor) -> Tensor:
    return logits


def output_head(model: nn.Module) -> Callable[[Tensor], Tensor]:
    """``h ↦ logits`` of a possibly wrapped causal LM: the output-embedding module (``get_output_embeddings()``)
    followed by the architecture's logit post-processing (:mod:`baldro.core.lm_head`), or the identity where
    :func:`final_hidden_states` returns full logits. ``out_features`` is the vocabulary size where known."""
    head = logit_head(_unwrap(model))
    return _identity if head is None else head


def model_sequence_stats(
    model: nn.Module,
    input_ids: Tensor,
    labels: Tensor,
    attention_mask: Tensor | None = None,
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
    forward_context: Callable[[], AbstractContextManager] | None = None,
    position_ids: Tensor | None = None,
) -> SequenceStats:
    """Per-sample answer statistics of ``model`` on a batch via the lean path, the head applied inside the head's
    own forward (:func:`baldro.core.head_in_forward.per_token_in_forward`; full logits for an architecture the lean
    head does not cover)."""

    from baldro.core.head_in_forward import per_token_in_forward  # it builds on this module

    def nll(features: Tensor, head: Callable[[Tensor], Tensor], linear: nn.Linear | None) -> Tensor:
        return stats_from_hidden(features, labels, head, chunk_tokens, linear=linear).token_nll

    token_nll = per_token_in_forward(model, input_ids, attention_mask, nll, forward_context, position_ids)
    return stats_from_token_nll(token_nll, labels)
