"""Tiny random models and hand-made batches for the trainer tests (no tokenizer files needed)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import torch
from transformers import LlamaConfig, LlamaForCausalLM, TrainingArguments

VOCAB = 48
PAD, EOS = 0, 1


class PadTokenizer:
    """Enough of a tokenizer for the collators and the Trainer."""

    pad_token_id = PAD
    eos_token_id = EOS

    def save_pretrained(self, *args: Any, **kwargs: Any) -> None:
        return None


def tiny_llama(seed: int = 0, hidden: int = 32, layers: int = 2) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        pad_token_id=PAD,
        eos_token_id=EOS,
        bos_token_id=2,
        tie_word_embeddings=False,
    )
    return LlamaForCausalLM(config).float()


def qa_items(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """``QADataset``-shaped items: random prompt and answer tokens, labels −100 on the prompt, EOS at the end."""
    rng = random.Random(seed)
    items = []
    for i in range(n):
        prompt = [2] + [rng.randrange(3, VOCAB) for _ in range(rng.randint(2, 6))]
        answer = [rng.randrange(3, VOCAB) for _ in range(rng.randint(1, 5))] + [EOS]
        ids = prompt + answer
        items.append(
            {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": [-100] * len(prompt) + answer, "index": i}
        )
    return items


class ListDataset(torch.utils.data.Dataset):
    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.items[i]


def args(out: Path, **overrides: Any) -> TrainingArguments:
    base = {
        "output_dir": str(out),
        "per_device_train_batch_size": 4,
        "learning_rate": 1e-2,
        "max_steps": 1,
        "report_to": "none",
        "save_strategy": "no",
        "logging_strategy": "no",
        "disable_tqdm": True,
        "use_cpu": True,
        "seed": 0,
        "data_seed": 0,
        "dataloader_num_workers": 0,
    }
    base.update(overrides)
    return TrainingArguments(**base)


def params(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def grads(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.grad.detach().clone() for k, v in model.named_parameters() if v.grad is not None}


def max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)
