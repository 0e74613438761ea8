"""Batched greedy generation: prompts sorted by length, left padding, KV cache, cut at EOS and stop strings.

Decoding follows open-unlearning: ``do_sample=False``, the continuation decoded with ``skip_special_tokens=True``,
cut at the first EOS and at any stop string, then stripped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from baldro.evaluation.scoring import length_batches, model_device


def cut_at_stops(text: str, stops: Sequence[str]) -> str:
    """``text`` up to the first occurrence of each stop string (applied in order), stripped."""
    for word in stops:
        if word and word in text:
            text = text.split(word)[0]
    return text.strip()


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
) -> list[str]:
    """Greedy continuations of token-id prompts (same order as given), decoded and cut."""
    eos = tokenizer.eos_token_id
    device = model_device(model)
    out: list[str] = [""] * len(prompts)
    for batch in tqdm(length_batches([len(p) for p in prompts], batch_size), desc=desc, disable=not progress, leave=False):
        width = max(len(prompts[i]) for i in batch)
        ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for r, i in enumerate(batch):
            p = prompts[i]
            ids[r, width - len(p) :] = torch.tensor(p, dtype=torch.long)
            mask[r, width - len(p) :] = 1
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
    return out
