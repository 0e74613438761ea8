"""Scoring answers from a cached prompt and the growing KV cache, against full-sequence passes and DynamicCache."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, DynamicCache

from baldro.evaluation.kv_cache import GrowingCache, cache_argument, growing_cache, supports_growing_cache
from baldro.evaluation.prefix_scoring import score_prefixed, supports_prefix_scoring
from baldro.evaluation.tofu_variants import shared_prompts


@pytest.fixture(scope="module")
def model_tok(random_tiny_model):
    model = AutoModelForCausalLM.from_pretrained(random_tiny_model).eval()
    return model, AutoTokenizer.from_pretrained(random_tiny_model)


def _random_items(vocab: int, n: int, variants: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    prompts = [torch.randint(5, vocab, (int(k),), generator=g).tolist() for k in torch.randint(2, 25, (n,), generator=g)]
    answers = [[torch.randint(5, vocab, (int(k),), generator=g).tolist() for k in torch.randint(1, 15, (variants,), generator=g)]
               for _ in prompts]
    answers[0][0] = answers[0][0][:1]  # a one-token answer: predicted by the prompt's last position only
    return prompts, answers


def test_prefixed_scores_equal_full_sequence_scores(model_tok, assert_full_sequence_scores):
    model, tok = model_tok
    assert supports_prefix_scoring(model)
    prompts, answers = _random_items(len(tok), n=9, variants=4)
    got = score_prefixed(model, prompts, answers, tok.pad_token_id, batch_size=4, progress=False)
    assert_full_sequence_scores(model, got, prompts, answers, tok.pad_token_id, batch_size=5)


def test_shared_prompts_split_rows_and_refuse_differing_prompts():
    enc_a = ([[1, 2, 3, 9]], [[-100, -100, 3, 9]])
    enc_b = ([[1, 2, 7, 8, 9]], [[-100, -100, 7, 8, 9]])
    assert shared_prompts([enc_a, enc_b]) == ([[1, 2]], [[[3, 9], [7, 8, 9]]])
    truncated = ([[1, 5, 7, 9]], [[-100, -100, 7, 9]])  # another prompt (left-truncated): not shareable
    assert shared_prompts([enc_a, truncated]) is None


def test_growing_cache_decodes_like_dynamic_cache_and_truncates(model_tok):
    model, tok = model_tok
    assert supports_growing_cache(model)
    arg = cache_argument(model)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, len(tok), (3, 70), generator=g)  # longer than the first buffer: the cache must grow

    def run(cache, steps: int) -> list[torch.Tensor]:
        out = []
        with torch.no_grad():
            for t in range(steps):
                logits = model(input_ids=ids[:, t : t + 1], position_ids=torch.full((3, 1), t), use_cache=True,
                               **{arg: cache}).logits
                out.append(logits[:, -1])
        return out

    grow = growing_cache(model)
    assert isinstance(grow, GrowingCache)
    for a, b in zip(run(grow, 70), run(DynamicCache(), 70)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert grow.get_seq_length() == 70
    grow.truncate(40)
    assert grow.get_seq_length() == 40 and grow.layers[0].keys.shape[2] == 40
    grow.batch_select_indices(torch.tensor([2, 0]))
    assert grow.layers[0].keys.shape[0] == 2
