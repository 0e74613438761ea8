"""Reference log-likelihoods computed once, instead of a frozen reference model kept in memory.

NPO and IdkDPO need log π_ref(y|x) = −Σ_t NLL_t of each forget (and refusal) answer under the initial model. We
compute it once before training — eval mode (no dropout), no autograd, the training collator (same tokenisation
and padding), the training step's mixed precision (``forward_context``) — and store it in the run folder keyed by dataset ``index``; the trainer feeds it to the objective by
the batch's ``index`` column.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from baldro.core.sequence import model_sequence_stats
from baldro.readback import check_safetensors

REFERENCE_FILE = "reference_logp.safetensors"
PARTS = ("forget", "idk")


def _dense(index: Tensor, values: Tensor) -> Tensor:
    table = torch.full((int(index.max()) + 1,), float("nan"), dtype=torch.float32)
    table[index.long()] = values.float()
    return table


class ReferenceCache:
    """log π_ref(y|x) per dataset index, for the ``forget`` answers and optionally the ``idk`` (refusal) answers."""

    def __init__(self, tables: dict[str, Tensor]) -> None:
        self.tables = {k: v.detach().float().cpu() for k, v in tables.items()}

    @classmethod
    def from_pairs(cls, pairs: dict[str, tuple[Tensor, Tensor]]) -> ReferenceCache:
        """From ``{part: (indices, logp)}``."""
        return cls({part: _dense(idx, val) for part, (idx, val) in pairs.items() if idx.numel()})

    def lookup(self, index: Tensor, part: str = "forget") -> Tensor:
        """log π_ref for the given dataset indices (on ``index``'s device); a missing entry is an error."""
        if part not in self.tables:
            raise KeyError(f"the reference cache holds no {part!r} answers; recompute it (delete {REFERENCE_FILE})")
        table = self.tables[part]
        idx = index.detach().long().cpu()
        bad = (idx < 0) | (idx >= table.numel())
        values = torch.full(idx.shape, float("nan"))
        values[~bad] = table[idx[~bad]]
        missing = idx[torch.isnan(values)]
        if missing.numel():
            raise KeyError(
                f"the reference cache has no {part!r} entry for dataset indices {missing.tolist()[:10]}; "
                f"it was computed on another dataset: delete {REFERENCE_FILE} in the run folder"
            )
        return values.to(index.device)

    def save(self, path: str | Path) -> None:
        save_file({k: v.contiguous() for k, v in self.tables.items()}, str(path))

    @classmethod
    def load(cls, path: str | Path) -> ReferenceCache:
        """The cache saved at ``path``; a torn or foreign file is a DataError naming it (delete it to recompute)."""
        check_safetensors(path, "delete it and it is computed again from the initial model", names=PARTS, ndim=1)
        return cls(load_file(str(path)))


@torch.no_grad()
def compute_reference_cache(
    model: nn.Module,
    items: Iterable[dict[str, Any]],
    collate: Callable[[list[dict[str, Any]]], dict[str, Any]],
    batch_size: int,
    device: torch.device | str,
    parts: tuple[str, ...] = ("forget",),
    chunk_tokens: int = 1024,
    forward_context: Callable[[], AbstractContextManager] | None = None,
) -> ReferenceCache:
    """Run ``model`` (eval mode, no grad) over training items ``{"forget": item, "idk": item, ...}`` once.

    ``collate`` is the training collator; only the requested ``parts`` of each collated batch are used.
    ``forward_context`` wraps each ``forward`` call (the trainer passes accelerate's mixed-precision autocast, which
    a prepared model's ``forward`` runs under in training), so the cached values carry the same rounding as the
    training step's own log-likelihoods: with ``bf16`` and float32 weights, computing them in plain float32
    instead shifts the NPO log-ratio at lr = 0 by up to ~0.1.
    """
    was_training = model.training
    model.eval()
    found: dict[str, tuple[list[Tensor], list[Tensor]]] = {p: ([], []) for p in parts}
    buffer: list[dict[str, Any]] = []

    def flush() -> None:
        batch = collate(buffer)
        for part in parts:
            b = batch[part]
            stats = model_sequence_stats(
                model,
                b["input_ids"].to(device),
                b["labels"].to(device),
                b["attention_mask"].to(device),
                chunk_tokens,
                forward_context,
                b["position_ids"].to(device) if "position_ids" in b else None,
            )
            found[part][0].append(b["index"].cpu())
            found[part][1].append(stats.logp_sum.float().cpu())
        buffer.clear()

    try:
        for item in items:
            buffer.append(item)
            if len(buffer) == batch_size:
                flush()
        if buffer:
            flush()
    finally:
        model.train(was_training)
    return ReferenceCache.from_pairs({p: (torch.cat(i), torch.cat(v)) for p, (i, v) in found.items() if i})
