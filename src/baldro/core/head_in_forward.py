"""The lean LM head applied inside the head module's own forward, so that sharding engines see it.

The lean path (:mod:`baldro.core.sequence`) needs the decoder's final hidden states at answer positions and the LM
head's *full* weight. Computing the head after ``model(...)`` has returned works on one process and under DDP, but
not where an engine shards the weight:

* FSDP1 holds the root unit's flat parameter (which includes ``lm_head`` under the usual transformer-layer wrap
  policy) gathered only during the root's forward; after it, ``lm_head.weight`` is this rank's 1-D shard.
* FSDP2 as accelerate applies it makes ``[final norm, lm_head]`` a unit of its own (its hooks gather the weight
  for that module's forward), the root another.
* DeepSpeed ZeRO-3 gathers each module's parameters in that module's forward pre-hook and releases them in its
  forward post-hook.

And every engine hooks its backward on the *outputs* of a forward: FSDP's pre-backward unshard and state machine,
ZeRO-3's re-gather, DDP's unused-parameter search. A loss computed from tensors the forward did not return leaves
those hooks unfired (FSDP1: "expected FORWARD_BACKWARD, state IDLE").

So the head is applied where every engine has gathered its weight — in a forward hook of the head module itself,
registered to run before any engine's post-forward hook on it — and the per-token values replace both the head's
output and the model's output ``logits``: the tensor the loss reads is what the head's and the model's forwards
returned, and each engine's backward hooks are on it. The model's own head call is the one with
``logits_to_keep=1`` (its last-position logits are never used), so this costs nothing extra. Numerically nothing
changes: the same function of the same hidden states (the fused head where the head is a plain ``nn.Linear``), under
the autocast state the caller had *outside* the forward (accelerate's mixed-precision autocast wraps the model's
``forward``; the head ran outside it before and still does). Where a model's forward never calls its head module,
the values are computed in a forward hook of the model (the root unit: FSDP1's and FSDP2's root gather there).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import torch
from torch import Tensor, nn

from baldro.core.lm_head import LogitHead, logit_head, unwrapped_class
from baldro.core.sequence import _decoder, _forward_kwargs, _identity, _unwrap, has_lean_head

# compute(features, head, linear): per-token values of a batch. ``head`` maps hidden states to logits; ``linear`` is
# the head as a fusable ``nn.Linear`` (its weight gathered) or None.
Compute = Callable[[Tensor, Callable[[Tensor], Tensor], "nn.Linear | None"], Tensor]


def _autocast_state(device: str) -> tuple[bool, torch.dtype | None]:
    """Whether autocast is on for ``device`` and its dtype (``None``: a device whose autocast is not restored)."""
    if device not in ("cpu", "cuda"):
        return False, None
    get_dtype = getattr(torch, "get_autocast_dtype", None)  # torch ≥ 2.4
    if get_dtype is not None:
        return torch.is_autocast_enabled(device), get_dtype(device)
    if device == "cpu":
        return torch.is_autocast_cpu_enabled(), torch.get_autocast_cpu_dtype()
    return torch.is_autocast_enabled(), torch.get_autocast_gpu_dtype()


class _GatheredHead:
    """The head as the model's forward applies it, called without the module's hooks (inside one of them): the
    module's own ``forward`` (PEFT layers call their base layer as usual), then the architecture's post-processing."""

    def __init__(self, model: nn.Module, module: nn.Module, lean: Any) -> None:
        self.model, self.module = model, module
        self.post = lean.post if isinstance(lean, LogitHead) else None

    def __call__(self, hidden: Tensor) -> Tensor:
        z = self.module.forward(hidden)
        return z if self.post is None else self.post(self.model, z)

    def linear(self) -> nn.Linear | None:
        """The module when :func:`baldro.core.linear_ce.linear_cross_entropy` reproduces it: a plain ``nn.Linear``
        (FSDP2's ``FSDPLinear`` is one) with a plain weight, no post-processing, no autocast active."""
        module, weight = self.module, getattr(self.module, "weight", None)
        if self.post is not None or unwrapped_class(type(module)) is not nn.Linear:
            return None
        if type(weight) not in (nn.Parameter, Tensor) or weight.dim() != 2:
            return None
        device = weight.device.type
        if torch.is_autocast_enabled(device) if device in ("cpu", "cuda") else True:
            return None
        return module  # type: ignore[return-value]


def _head_module(model: nn.Module) -> nn.Module:
    """The output-embedding module of the innermost model (an FSDP1-wrapped head unwrapped to the module itself)."""
    return _unwrap(_unwrap(model).get_output_embeddings())


@contextlib.contextmanager
def head_inside_forward(model: nn.Module, compute: Compute, device: str) -> Iterator[dict[str, Tensor]]:
    """During the ``with`` block, each forward of ``model`` computes ``compute(hidden, head, linear)`` inside the
    head module's forward (or, if the forward never calls it, the model's) and returns it as the head's output and
    the model's ``logits``; ``captured["value"]`` holds it too."""
    inner = _unwrap(model)
    module = _head_module(model)
    head = _GatheredHead(inner, module, logit_head(inner))
    captured: dict[str, Tensor] = {}
    enabled, dtype = _autocast_state(device)

    def evaluate() -> Tensor:
        hidden = captured.pop("hidden")
        context = torch.autocast(device, dtype=dtype, enabled=enabled) if dtype is not None else contextlib.nullcontext()
        with context:
            captured["value"] = compute(hidden, head, head.linear())
        return captured["value"]

    def on_decoder(_module: nn.Module, _inputs: object, output: Any) -> None:
        captured["hidden"] = output[0] if isinstance(output, tuple) else output.last_hidden_state

    def on_head(_module: nn.Module, _inputs: object, _output: object) -> Tensor | None:
        return evaluate() if "hidden" in captured else None

    def on_model(_module: nn.Module, _inputs: object, output: Any) -> Any:
        value = evaluate() if "hidden" in captured else captured.get("value")
        if value is not None and getattr(output, "logits", None) is not None:
            output.logits = value
        return output

    handles = [
        _decoder(model).register_forward_hook(on_decoder),
        module.register_forward_hook(on_head, prepend=True),
        inner.register_forward_hook(on_model, prepend=True),
    ]
    try:
        yield captured
    finally:
        for handle in handles:
            handle.remove()


def per_token_in_forward(
    model: nn.Module,
    input_ids: Tensor,
    attention_mask: Tensor | None,
    compute: Compute,
    forward_context: Callable[[], AbstractContextManager] | None = None,
    position_ids: Tensor | None = None,
) -> Tensor:
    """``compute(features, head, linear)`` of a batch, evaluated within ``model``'s forward (module docstring):
    ``features`` are the final hidden states and ``head`` the architecture's ``h ↦ logits`` for a lean-head
    architecture; for any other the features are the forward's full logits, the head the identity and ``linear``
    None. The call goes through the outermost wrapper (DDP, FSDP, DeepSpeed, PEFT); positions as in
    :func:`baldro.core.sequence.final_hidden_states`; ``forward_context`` wraps the ``forward`` call only."""
    context = forward_context() if forward_context is not None else contextlib.nullcontext()
    if not has_lean_head(model):
        with context:
            logits = model(
                input_ids=input_ids,
                attention_mask=attention_mask,
                use_cache=False,
                **_forward_kwargs(model, attention_mask, keep_logits=False, position_ids=position_ids),
            ).logits
        return compute(logits, _identity, None)
    with head_inside_forward(model, compute, input_ids.device.type) as captured, context:
        out = model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            use_cache=False,
            **_forward_kwargs(model, attention_mask, position_ids=position_ids),
        )
    value = getattr(out, "logits", None)
    return value if isinstance(value, Tensor) else captured["value"]
