"""Training a tiny model until it reproduces given answers (the memorised models of the evaluation and bf16 tests)."""

from __future__ import annotations

from typing import Any


def memorise(model: Any, tokenizer: Any, pairs: list[tuple[str, str]], steps: int) -> None:
    """Full-batch Adam (lr 1e-2, seed 0) for ``steps`` steps on the (question, answer) ``pairs`` as items of the
    evaluation's default prompt format (labels on the answer and EOS); ``model`` is left in training mode."""
    import torch

    from baldro.data.formatting import PromptFormat, encode_qa_many

    encoded, _ = encode_qa_many(tokenizer, pairs, PromptFormat.auto(), 512)
    width = max(len(e.input_ids) for e in encoded)
    ids = torch.full((len(encoded), width), tokenizer.pad_token_id)
    labels = torch.full((len(encoded), width), -100)
    mask = torch.zeros((len(encoded), width), dtype=torch.long)
    for r, e in enumerate(encoded):
        n = len(e.input_ids)
        ids[r, :n], labels[r, :n], mask[r, :n] = torch.tensor(e.input_ids), torch.tensor(e.labels), 1
    torch.manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        model(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
        opt.step()
