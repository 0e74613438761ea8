"""A key/value cache that grows in place, for evaluation's cached forward passes (prompt prefixes, greedy decoding).

transformers' ``DynamicCache`` concatenates every new key/value onto the whole cache at every step
(``torch.cat``): decoding ``n`` tokens copies O(n²) cache entries, which dominates a small model's decoding time on
CPU. :class:`GrowingCache` writes new entries into a preallocated buffer (doubling when full) and hands the model a
view of its filled part — the same values and shapes ``DynamicCache`` would return, so attention computes the same
numbers. It also supports :meth:`GrowingCache.truncate` (drop everything after a prefix, to score several
continuations of one cached prompt) and ``batch_select_indices`` (drop finished rows).

Only for transformers versions with per-layer caches (``transformers.cache_utils.DynamicLayer``) and models whose
attention layers are all full (no sliding window, no linear attention): :func:`growing_cache` returns None otherwise
and callers keep transformers' own path.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

import torch
from torch import nn

try:  # transformers >= 4.56: caches are lists of layers
    from transformers.cache_utils import Cache, DynamicCache, DynamicLayer
except ImportError:  # pragma: no cover - older transformers: callers fall back to generate / full passes
    Cache = DynamicCache = DynamicLayer = None  # type: ignore[assignment,misc]

MIN_CAPACITY = 64


if DynamicLayer is not None:

    class GrowingLayer(DynamicLayer):  # type: ignore[misc,valid-type]
        """One layer's keys/values in a buffer ``[B, H, capacity, D]``; ``keys``/``values`` view the filled part.
        ``reserve``: positions to allocate at the first update (more are added by doubling)."""

        def __init__(self, reserve: int = 0) -> None:
            super().__init__()
            self.reserve = reserve

        def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
            self.device = key_states.device
            self.length = 0
            size = max(self.reserve, key_states.shape[2])
            self._k = key_states.new_empty((*key_states.shape[:2], size, key_states.shape[3]))
            self._v = value_states.new_empty((*value_states.shape[:2], size, value_states.shape[3]))
            self.keys, self.values = self._k, self._v
            self.is_initialized = True

        def _grow(self, needed: int) -> None:
            capacity = max(MIN_CAPACITY, needed, 2 * self._k.shape[2])
            k = self._k.new_empty((*self._k.shape[:2], capacity, self._k.shape[3]))
            v = self._v.new_empty((*self._v.shape[:2], capacity, self._v.shape[3]))
            k[:, :, : self.length] = self._k[:, :, : self.length]
            v[:, :, : self.length] = self._v[:, :, : self.length]
            self._k, self._v = k, v

        def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any):
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            n = key_states.shape[2]
            if self.length + n > self._k.shape[2]:
                self._grow(self.length + n)
            self._k[:, :, self.length : self.length + n] = key_states
            self._v[:, :, self.length : self.length + n] = value_states
            self.length += n
            self.keys, self.values = self._k[:, :, : self.length], self._v[:, :, : self.length]
            return self.keys, self.values

        def get_seq_length(self) -> int:
            return self.length if self.is_initialized else 0

        def truncate(self, length: int) -> None:
            if self.is_initialized:
                self.length = min(self.length, length)
                self.keys, self.values = self._k[:, :, : self.length], self._v[:, :, : self.length]

        def crop(self, tokens_to_remove: int) -> None:
            self.truncate(self.length - abs(tokens_to_remove) if tokens_to_remove < 0 else tokens_to_remove)

        def batch_select_indices(self, indices: torch.Tensor) -> None:
            if self.is_initialized:  # copies the filled part only, into buffers of the same capacity
                shape = (indices.numel(), *self._k.shape[1:])
                k, v = self._k.new_empty(shape), self._v.new_empty(shape)
                k[:, :, : self.length] = self._k[indices, :, : self.length]
                v[:, :, : self.length] = self._v[indices, :, : self.length]
                self._k, self._v = k, v
                self.keys, self.values = self._k[:, :, : self.length], self._v[:, :, : self.length]

        def batch_repeat_interleave(self, repeats: int) -> None:
            if self.is_initialized:
                self._k = self._k.repeat_interleave(repeats, dim=0)
                self._v = self._v.repeat_interleave(repeats, dim=0)
                self.keys, self.values = self._k[:, :, : self.length], self._v[:, :, : self.length]

    class GrowingCache(DynamicCache):  # type: ignore[misc,valid-type]
        """A ``DynamicCache`` made of :class:`GrowingLayer` (created lazily, one per attention layer), each reserving
        ``reserve`` positions."""

        def __init__(self, reserve: int = 0) -> None:
            Cache.__init__(self, layer_class_to_replicate=functools.partial(GrowingLayer, reserve=reserve))

        def truncate(self, length: int) -> None:
            """Keep the first ``length`` positions of every layer (no copy)."""
            for layer in self.layers:
                layer.truncate(length)


def _config(model: nn.Module) -> Any:
    return getattr(model, "config", None)


def supports_growing_cache(model: nn.Module) -> bool:
    """Whether :func:`growing_cache` can serve ``model``: per-layer caches, a decoder-only model with full attention
    in every layer, and a forward that takes ``position_ids`` and a cache."""
    config = _config(model)
    if DynamicLayer is None or config is None or getattr(config, "is_encoder_decoder", False):
        return False
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    if getattr(text, "sliding_window", None) and getattr(text, "use_sliding_window", True):
        return False
    layer_types = getattr(text, "layer_types", None)
    if layer_types and any(t != "full_attention" for t in layer_types):
        return False
    params = inspect.signature(model.forward).parameters
    return "position_ids" in params and cache_argument(model) is not None


def cache_argument(model: nn.Module) -> str | None:
    """The name under which ``model.forward`` takes its cache (``cache`` in recent transformers, else
    ``past_key_values``), or None."""
    params = inspect.signature(model.forward).parameters
    for name in ("cache", "past_key_values"):
        if name in params:
            return name
    return None


def growing_cache(model: nn.Module, reserve: int = 0) -> GrowingCache | None:
    """A fresh :class:`GrowingCache` for ``model`` (``reserve`` positions per layer allocated up front), or None where
    it is not supported (see the module docstring)."""
    return GrowingCache(reserve) if supports_growing_cache(model) else None
