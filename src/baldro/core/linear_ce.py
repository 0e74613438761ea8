"""Fused LM head + cross-entropy: per-token NLL −log softmax(h·Wᵀ + b)[y] without the generic autograd path's copies.

    z = h·Wᵀ + b  (model dtype, as ``nn.Linear``),  then in float32:  nll = logsumexp(z) − z_y,
    ∂nll/∂z = softmax(z) − onehot(y)  (the textbook gradient of cross-entropy, e.g. Goodfellow et al. 2016, §6.2.2.3)

The numbers are those of ``F.cross_entropy(head(h).float(), y, reduction="none")`` (:func:`stats_from_hidden`'s
generic path) up to float32 rounding. What changes is the work around the matrix products, which on a large
vocabulary (128k) dominates after them: the generic path allocates four ``[n, V]`` float32 tensors per chunk
(logits, log-softmax, the zero-filled NLL gradient, the log-softmax gradient), each fresh allocation costing its page
faults on CPU. Here the logits chunk is turned *in place* into ``softmax − onehot`` during the forward and kept for
the backward, which is then two matrix products (∂h = g·(P·W), ∂W = Pᵀ·(g·h), g the per-token upstream gradient).
Without autograd a single chunk buffer is reused. Tokens whose upstream gradient is zero (the rows BalDRO-G drops)
cost no matrix product in the backward (:func:`nonzero_runs`).

Only for a plain ``nn.Linear`` head with no hooks (:func:`fusable_head`): PEFT-wrapped, quantised, hooked (DeepSpeed
ZeRO-3, FSDP) or post-processed heads keep the generic path, which calls the module.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable
from torch.nn.modules import module as _module

# backward: runs of zero-gradient tokens at least this long are skipped (each token costs 4·V·H FLOPs, each extra
# range another read of the [V, H] weight)
MIN_GAP = 16


def fusable_head(head: object) -> nn.Linear | None:
    """``head`` when it is a plain ``nn.Linear`` that :func:`linear_cross_entropy` reproduces exactly — no forward
    hooks (its own or global: ZeRO-3 and FSDP gather parameters in them), its weight a plain parameter or tensor
    (inside an FSDP1 unit's forward the weight is a view of the gathered flat parameter; a sharded ``DTensor`` or a
    ZeRO-3 placeholder is not), no autocast active — else ``None``."""
    if type(head) is not nn.Linear:
        return None
    if head._forward_hooks or head._forward_pre_hooks or _module._global_forward_hooks:
        return None
    if _module._global_forward_pre_hooks or type(head.weight) not in (nn.Parameter, Tensor):
        return None
    device = head.weight.device.type
    if torch.is_autocast_enabled(device) if device in ("cpu", "cuda") else True:
        return None
    return head


def _softmax_minus_onehot_(z: Tensor, targets: Tensor) -> Tensor:
    """Turn float32 logits ``z`` [n, V] into softmax(z) − onehot(targets) in place; return the NLL [n]."""
    picked = z.gather(1, targets[:, None]).squeeze(1)
    top = z.amax(dim=1, keepdim=True)
    z.sub_(top).exp_()
    total = z.sum(dim=1, keepdim=True)
    z.div_(total)
    z.scatter_add_(1, targets[:, None], z.new_full((targets.numel(), 1), -1.0))
    return (total.log_() + top).squeeze(1) - picked


def _linear_into(hidden: Tensor, weight: Tensor, bias: Tensor | None, out: Tensor) -> Tensor:
    """``F.linear`` (the same BLAS call: addmm with a bias, mm without) written into ``out``."""
    if bias is None:
        return torch.mm(hidden, weight.t(), out=out)
    return torch.addmm(bias, hidden, weight.t(), out=out)


def _nll_no_grad(hidden: Tensor, weight: Tensor, bias: Tensor | None, targets: Tensor, chunk: int) -> Tensor:
    """NLL without autograd: logsumexp(z) − z_y chunk by chunk, float32 logits in one reused buffer — the same
    chunks and operations as the autograd path, so both give the same bits (a reference cache computed here matches
    the training step exactly at lr = 0)."""
    n = hidden.shape[0]
    reuse = weight.dtype == torch.float32 and hidden.dtype == torch.float32
    buffer = hidden.new_empty((min(chunk, n), weight.shape[0])) if reuse and n else None
    out = []
    for start in range(0, n, chunk):
        h = hidden[start : start + chunk]
        z = _linear_into(h, weight, bias, buffer[: h.shape[0]]) if buffer is not None else F.linear(h, weight, bias)
        z = z.float()
        t = targets[start : start + chunk]
        picked = z.gather(1, t[:, None]).squeeze(1)
        top = z.amax(dim=1, keepdim=True)
        total = z.sub_(top).exp_().sum(dim=1)
        out.append(total.log_() + top.squeeze(1) - picked)
    return torch.cat(out) if out else hidden.new_zeros(0, dtype=torch.float32)


def nonzero_runs(values: Tensor, min_gap: int = MIN_GAP) -> list[tuple[int, int]]:
    """``[start, stop)`` ranges covering every non-zero entry of a 1-D tensor; zero gaps shorter than ``min_gap`` are
    kept inside a range (computing them costs less than another pass over the head's weight)."""
    index = values.nonzero().flatten()
    if index.numel() == 0:
        return []
    breaks = ((index[1:] - index[:-1]) > min_gap).nonzero().flatten()
    starts = torch.cat([index[:1], index[breaks + 1]]).tolist()
    stops = torch.cat([index[breaks], index[-1:]]).add(1).tolist()
    return list(zip(starts, stops))


class _LinearCrossEntropy(torch.autograd.Function):
    """Forward: per chunk, logits → NLL, the logits buffer left holding softmax − onehot (saved). Backward: two
    matrix products per chunk with a non-zero upstream gradient."""

    @staticmethod
    def forward(ctx: Any, hidden: Tensor, weight: Tensor, bias: Tensor | None, targets: Tensor, chunk: int) -> Tensor:
        pieces, probs = [], []
        for start in range(0, hidden.shape[0], chunk):
            z = F.linear(hidden[start : start + chunk], weight, bias).float()
            pieces.append(_softmax_minus_onehot_(z, targets[start : start + chunk]))
            probs.append(z)
        ctx.save_for_backward(hidden, weight, *probs)
        ctx.chunk, ctx.has_bias = chunk, bias is not None
        return torch.cat(pieces) if pieces else hidden.new_zeros(0, dtype=torch.float32)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        hidden, weight, *chunks = ctx.saved_tensors
        need_h, need_w, need_b = ctx.needs_input_grad[:3]
        grad_h = torch.zeros_like(hidden) if need_h else None
        grad_w = torch.zeros_like(weight, dtype=torch.float32) if need_w else None  # summed over chunks in float32
        grad_b = weight.new_zeros(weight.shape[0], dtype=torch.float32) if need_b and ctx.has_bias else None
        for i, probs in enumerate(chunks):
            base = i * ctx.chunk
            for a, b in nonzero_runs(grad[base : base + probs.shape[0]]):
                rows, p = slice(base + a, base + b), probs[a:b]
                g, h = grad[rows], hidden[rows]
                if p.dtype == weight.dtype:  # float32: scale the [n, H] side, not the [n, V] one
                    if grad_h is not None:
                        grad_h[rows] = (p @ weight) * g[:, None]
                    if grad_w is not None:
                        grad_w.addmm_(p.t(), h * g[:, None])
                    if grad_b is not None:
                        grad_b.add_(p.t() @ g)
                else:
                    dz = (p * g[:, None]).to(weight.dtype)
                    if grad_h is not None:
                        grad_h[rows] = dz @ weight
                    if grad_w is not None:
                        grad_w.add_(dz.t() @ h)
                    if grad_b is not None:
                        grad_b.add_(dz.sum(0))
        if grad_w is not None:
            grad_w = grad_w.to(weight.dtype)
        if grad_b is not None:
            grad_b = grad_b.to(weight.dtype)
        return grad_h, grad_w, grad_b, None, None


def linear_cross_entropy(
    hidden: Tensor, weight: Tensor, bias: Tensor | None, targets: Tensor, chunk_tokens: int = 1024
) -> Tensor:
    """Per-token NLL (float32, [n]) of ``targets`` under ``F.linear(hidden, weight, bias)``, ``chunk_tokens`` rows of
    logits at a time; differentiable in ``hidden``, ``weight`` and ``bias`` when autograd is on."""
    chunk = max(1, int(chunk_tokens))
    needs_grad = torch.is_grad_enabled() and (
        hidden.requires_grad or weight.requires_grad or (bias is not None and bias.requires_grad)
    )
    if not needs_grad:
        return _nll_no_grad(hidden, weight, bias, targets, chunk)
    return _LinearCrossEntropy.apply(hidden, weight, bias, targets, chunk)
