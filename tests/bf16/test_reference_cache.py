"""The NPO reference cache under bf16: computed under the training step's autocast (float32 or bf16 weights) it holds
float32 values within bf16 noise of the float32 cache, and at lr = 0 it equals the training forward exactly wherever
the forward's shape matches (issue 22, item 9; numbers on SmolLM2-135M in benchmarks/RESULTS.md, 2026-12-07).

The residual: PyTorch's CPU ``scaled_dot_product_attention`` blocks its bf16 products by the padded sequence length,
so a row's log-likelihood depends on how far its batch is padded (not on the other rows). The cache pass batches the
forget set in dataset order, the training step in shuffled order: rows whose two batches are padded to different
widths differ by bf16 noise. Eager attention, or the same padded width, gives the same bits.
"""

from __future__ import annotations

import random

import pytest
import torch
from tests.training.tiny import EOS, VOCAB, ListDataset, PadTokenizer, args, tiny_llama

from baldro.core.sequence import model_sequence_stats
from baldro.data.collate import UnlearnCollator
from baldro.training.reference_cache import compute_reference_cache
from baldro.training.trainer import UnlearnTrainer

from .precision import U, assert_bf16_close, max_relative

BETA = 0.1


def long_items(n: int, seed: int = 0) -> list[dict]:
    """Prompts of 10–30 and answers of 5–25 tokens: padded widths vary between batches."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        prompt = [2] + [rng.randrange(3, VOCAB) for _ in range(rng.randint(10, 30))]
        answer = [rng.randrange(3, VOCAB) for _ in range(rng.randint(5, 25))] + [EOS]
        ids = prompt + answer
        out.append({"input_ids": ids, "attention_mask": [1] * len(ids), "labels": [-100] * len(prompt) + answer,
                    "index": i})
    return out


def _model(weights: str, attn: str = "sdpa") -> torch.nn.Module:
    model = tiny_llama(seed=0, hidden=64)
    model.lm_head.weight.data.mul_(100.0)  # a real model's logit spread (tests/bf16/test_training_step.py)
    model.config._attn_implementation = attn
    return model.to(getattr(torch, weights))


def _collate(items):
    return UnlearnCollator(PadTokenizer())([{"forget": item} for item in items])


def _autocast():
    return torch.autocast("cpu", dtype=torch.bfloat16)


@pytest.mark.parametrize("weights", ["float32", "bfloat16"])
def test_cache_under_autocast_is_float32_within_bf16_noise(weights):
    """Σ log π of each row (−230 to −990 nats over ≤ 25 tokens): each logit carries U-relative rounding of ~10 nats,
    partly cancelling over the row; observed 0.2 U (float32 weights) and 0.75 U (bf16 weights) relative. Bound 2 U."""
    items = long_items(8)
    want = compute_reference_cache(_model("float32").eval(), items, _collate, 4, "cpu").tables["forget"]
    got = compute_reference_cache(_model(weights).eval(), items, _collate, 4, "cpu", forward_context=_autocast)
    table = got.tables["forget"]
    assert table.dtype == torch.float32 and table.shape == want.shape == (8,)
    assert_bf16_close(max_relative(table, want), 2 * U, f"reference cache ({weights} weights, bf16 autocast)")


def _lr0_ratios(tmp_path, weights: str, attn: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(log π − log π_ref of every training row at lr 0 under bf16 autocast, log π − the same row's reference
    recomputed alone, right-padded to its training batch's width, log π)."""
    model = _model(weights, attn)
    trainer = UnlearnTrainer(
        model=model, args=args(tmp_path, learning_rate=0.0, num_train_epochs=2, max_steps=-1, bf16=True),
        forget_dataset=ListDataset(long_items(12, seed=1)), processing_class=PadTokenizer(),
        objective={"name": "npo", "beta": BETA}, retain=None, log_every=None,
    )
    ratios, same_width, logps = [], [], []
    original = trainer.forget_inputs

    def spy(model_, inputs, rows=None):
        fi = original(model_, inputs, rows)
        b = inputs["forget"]
        logp = fi.stats.logp_sum.detach()
        ratios.append(logp - fi.ref_logp)
        logps.append(logp)
        with torch.no_grad():
            alone = [model_sequence_stats(model_, b["input_ids"][r : r + 1], b["labels"][r : r + 1],
                                          b["attention_mask"][r : r + 1], 1024, trainer._policy_context(model_))
                     for r in range(b["input_ids"].shape[0])]
        same_width.append(logp - torch.cat([s.logp_sum for s in alone]))
        return fi

    trainer.forget_inputs = spy
    trainer.train()
    assert len(ratios) == 6  # 2 epochs × 3 shuffled batches of 4
    return torch.cat(ratios), torch.cat(same_width), torch.cat(logps)


@pytest.mark.parametrize("weights", ["float32", "bfloat16"])
def test_lr0_reference_equals_the_training_forward_at_the_same_padded_width(tmp_path, weights):
    ratio, same_width, logp = _lr0_ratios(tmp_path, weights, "sdpa")
    assert float(same_width.abs().max()) == 0.0  # the residual is the padded width, nothing else
    # the cache (dataset-order batches) vs the shuffled training batches: bf16 noise on a few rows (observed up to
    # 0.03 nats with float32 weights, 0.17 with bf16 weights, on sums of −230 to −990: ≤ 0.05 U relative); bound U/4
    residual = max_relative(logp - ratio, logp)
    assert residual > 0, "the padded-width residual vanished: update docs/lean-lm-head.md §2 and this test"
    assert residual <= U / 4, f"cache vs training forward at lr 0: {residual / U:.3g} U"


def test_lr0_log_ratio_is_exactly_zero_with_eager_attention(tmp_path):
    ratio, same_width, _ = _lr0_ratios(tmp_path, "bfloat16", "eager")
    assert float(ratio.abs().max()) == 0.0 and float(same_width.abs().max()) == 0.0
