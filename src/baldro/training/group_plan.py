"""How a micro-batch runs BalDRO-G: which rows get autograd, and how many passes it takes to know.

Both plans give the same kept rows, loss and gradients (to float rounding; tests/training/test_group_plan.py):

* ``two-pass`` — rank every row in a no-grad pass, then run the kept rows again with autograd. Decoder work per step:
  forward on all T tokens, forward and backward on the kept T_K; LM head: forward on all A answer tokens, forward and
  backward on the kept A_K.
* ``one-pass`` — one forward with autograd on every row; rank on those per-sample losses (read without autograd),
  then back-propagate from the kept rows only. The fused LM head (:mod:`baldro.core.linear_ce`) skips the matrix
  products of tokens whose gradient is zero, so the head costs a forward on A and a backward on A_K; the decoder's
  backward, however, runs over every row (the dropped rows' zero gradients included).

With ≈ 2·P FLOPs per token and matrix of P parameters forward, 4·P backward (N = decoder parameters without the
input embedding, V·H = LM head), two-pass − one-pass = 2·V·H·A_K + 6·N·T_K − 4·N·T. ``auto`` takes one-pass when
that is positive, estimating the kept share T_K/T = A_K/A by k/B — on a large vocabulary over a small decoder
(``tiny-bigvocab``: V·H = 16.4 M, N = 0.5 M) one-pass, on real models (Llama-3.2-1B: V·H = 0.26 B, N = 0.97 B)
two-pass. One-pass needs the fused head; otherwise (PEFT-wrapped or post-processed heads, full-logit fallback) it is
never chosen. Memory: one-pass keeps the softmax of every forget answer token until the backward, as a non-DRO step
does; two-pass only the kept rows'.

With dropout active the two plans are different methods, not two speeds of one: two-pass ranks on one dropout draw
and trains the kept rows on another (what the released code does: ``compute_forget_group`` forwards the whole batch,
then the kept rows again), one-pass ranks and trains on the same draw and consumes the RNG differently. So ``auto``
takes two-pass whenever the model has active dropout (:func:`active_dropout`), and an explicit ``one-pass`` there is
warned about once. ``auto`` also takes two-pass where the parameters are sharded (FSDP, ZeRO-3; :func:`choose_plan`).
"""

from __future__ import annotations

import warnings
from typing import Any

from torch import nn

from baldro.aggregators.group import kept_count
from baldro.core.labels import IGNORE_INDEX
from baldro.core.linear_ce import fusable_head
from baldro.core.sequence import _decoder, output_head
from baldro.training.sharding import parameters_sharded

GROUP_PLANS = ("auto", "one-pass", "two-pass")


def body_parameters(model: nn.Module) -> int:
    """Parameters of the decoder stack outside its embedding tables (what every token runs through)."""
    decoder = _decoder(model)
    embedded = {id(p) for m in decoder.modules() if isinstance(m, nn.Embedding) for p in m.parameters()}
    return sum(p.numel() for p in decoder.parameters() if id(p) not in embedded)


def one_pass_cheaper(model: nn.Module, forget: dict[str, Any], ratio: float, rounding: str = "ceil") -> bool:
    """The FLOP comparison of the module docstring for this forget micro-batch (False without a fused head)."""
    head = fusable_head(output_head(model))
    if head is None:
        return False
    labels = forget["labels"]
    mask = forget.get("attention_mask")
    tokens = int(mask.sum()) if mask is not None else labels.numel()
    answer = int((labels[:, 1:] != IGNORE_INDEX).sum())
    batch = labels.shape[0]
    share = kept_count(ratio, batch, rounding) / batch
    vh, n = head.weight.numel(), body_parameters(model)
    return 2 * vh * share * answer + 6 * n * share * tokens > 4 * n * tokens


# config fields through which transformers' models apply dropout functionally (no nn.Dropout module to find)
DROPOUT_FIELDS = ("attention_dropout", "hidden_dropout", "dropout", "activation_dropout", "attn_pdrop",
                  "resid_pdrop", "embd_pdrop", "hidden_dropout_prob", "attention_probs_dropout_prob")


def active_dropout(model: nn.Module) -> bool:
    """Whether a forward of ``model`` in its current mode draws dropout masks: in training mode, a dropout module with
    p > 0 or a dropout probability > 0 in the config (of the model or of a wrapped base model)."""
    if not model.training:
        return False
    for module in model.modules():
        if isinstance(module, nn.modules.dropout._DropoutNd) and module.p > 0 and module.training:
            return True
        config = getattr(module, "config", None)
        if config is not None and any(float(getattr(config, f, 0.0) or 0.0) > 0 for f in DROPOUT_FIELDS):
            return True
    return False


_warned_one_pass = False


def choose_plan(plan: str, model: nn.Module, forget: dict[str, Any], aggregator: Any) -> str:
    """``one-pass`` or ``two-pass`` for this micro-batch (``auto``: two-pass under active dropout or sharded
    parameters, else the cheaper by :func:`one_pass_cheaper`). Sharded (FSDP, ZeRO-3): every forward is a collective,
    so all processes must take the same plan, and the cheaper one depends on each process's own micro-batch (and its
    shard of the head); two-pass is what ``auto`` takes on models of the size one shards anyway."""
    global _warned_one_pass
    dropout = active_dropout(model)
    if plan == "one-pass" and dropout and not _warned_one_pass:
        _warned_one_pass = True
        warnings.warn("group_plan one-pass with dropout active ranks and trains on the same dropout draw; two-pass "
                      "(the released code's order, and what 'auto' takes) ranks on a draw of its own: the results "
                      "differ, not only the speed", stacklevel=2)
    if plan != "auto":
        return plan
    if dropout or parameters_sharded(model):
        return "two-pass"
    cheaper = one_pass_cheaper(model, forget, aggregator.ratio, getattr(aggregator, "rounding", "ceil"))
    return "one-pass" if cheaper else "two-pass"
