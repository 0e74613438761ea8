"""A key/value cache that grows in place, for evaluation's cached forward passes (prompt prefixes, greedy decoding).

transformers' ``DynamicCache`` concatenates every new key/value onto the whole cache at every step
(``torch.cat``): decoding ``n`` tokens copies O(n²) cache entries, which dominates a small model's decoding time on
CPU. :class:`GrowingCache` writes new entries into a preallocated buffer (doubling when full) and hands the model a
view of its filled part — the same values and shapes ``DynamicCache`` would return, so attention computes the same
numbers. It also supports :meth:`GrowingCache.truncate` (drop everything after a prefix, to score several
continuations of one cached prompt), ``batch_select_indices`` (keep some rows: copies the whole filled part),
:meth:`GrowingCache.compact_rows` (drop finished rows by moving the last live rows into their slots: copies only the
moved rows) and :func:`assemble_prompts` (one left-padded batch cache from prompt caches computed group by group).

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

        def move_rows(self, src: torch.Tensor, dst: torch.Tensor, n_rows: int) -> None:
            """Copy rows ``src`` onto rows ``dst`` (filled part only), then keep the first ``n_rows`` rows (a view
            of the same buffer: no copy of the rows that stay)."""
            if self.is_initialized:
                if src.numel():
                    self._k[dst, :, : self.length] = self._k[src, :, : self.length]
                    self._v[dst, :, : self.length] = self._v[src, :, : self.length]
                self._k, self._v = self._k[:n_rows], self._v[:n_rows]
                self.keys, self.values = self._k[:, :, : self.length], self._v[:, :, : self.length]

        def place(self, n_rows: int, width: int, parts: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]) -> None:
            """Initialise as ``n_rows`` rows of ``width`` positions, zero where no part writes (left padding: masked,
            and zero so that a masked key's weight 0 never meets a non-finite value); ``parts``: (rows, keys,
            values) with keys/values ``[len(rows), H, n, D]`` written right-aligned at positions ``width − n …``."""
            k0, v0 = parts[0][1], parts[0][2]
            size = max(self.reserve, width)
            self.device = k0.device
            self._k = k0.new_empty((n_rows, k0.shape[1], size, k0.shape[3]))
            self._v = v0.new_empty((n_rows, v0.shape[1], size, v0.shape[3]))
            self._k[:, :, :width].zero_()
            self._v[:, :, :width].zero_()
            for rows, keys, values in parts:
                self._k[rows, :, width - keys.shape[2] : width] = keys
                self._v[rows, :, width - values.shape[2] : width] = values
            self.length = width
            self.keys, self.values = self._k[:, :, :width], self._v[:, :, :width]
            self.is_initialized = True

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

        def compact_rows(self, keep: list[int]) -> list[int]:
            """Keep batch rows ``keep`` (ascending), moving as few as possible: each dropped row among the first
            ``len(keep)`` is overwritten by a kept row from past them. Returns the new order (the old index of each
            new row), for the caller's per-row tensors. Copies ``moved rows × filled length`` per layer, against
            ``batch_select_indices``'s ``kept rows × filled length``."""
            n = len(keep)
            kept = set(keep)
            holes = [j for j in range(n) if j not in kept]
            movers = [j for j in keep if j >= n]
            order = list(range(n))
            for hole, mover in zip(holes, movers):
                order[hole] = mover
            if self.layers:
                device = self.layers[0].device
                src, dst = torch.tensor(movers, device=device), torch.tensor(holes, device=device)
                for layer in self.layers:
                    layer.move_rows(src, dst, n)
            return order


def assemble_prompts(parts: list[tuple[list[int], GrowingCache]], n_rows: int, width: int,
                     reserve: int = 0) -> GrowingCache:
    """One :class:`GrowingCache` of ``n_rows`` left-padded rows, ``width`` positions, from prompt caches computed
    group by group: ``parts`` = (batch rows, that group's cache), each group's keys/values right-aligned (its rows'
    prompts end at ``width``). Padding positions hold zeros (the caller masks them)."""
    cache = GrowingCache(reserve)
    for layer_idx in range(len(parts[0][1].layers)):
        layer = cache.layer_class_to_replicate()
        device = parts[0][1].layers[layer_idx].keys.device
        layer.place(n_rows, width, [(torch.tensor(rows, device=device), part.layers[layer_idx].keys,
                                     part.layers[layer_idx].values) for rows, part in parts])
        cache.layers.append(layer)
    return cache


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
