"""Packed prefix-tree scoring gives the scores of full-sequence passes; the trie, the packing and the shared LM head."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from baldro.evaluation.prefix_scoring import score_prefixed
from baldro.evaluation.scoring import scores_at
from baldro.evaluation.tree_scoring import _Trie, pack, score_packed, supports_tree_scoring


@pytest.fixture(scope="module")
def tok(random_tiny_model):
    return AutoTokenizer.from_pretrained(random_tiny_model)


def _items(vocab: int, n: int, variants: int, seed: int = 0):
    """Random prompts and answers; a row's later variants often start like its first one (a shared prefix)."""
    g = torch.Generator().manual_seed(seed)

    def rand(k: int) -> list[int]:
        return torch.randint(5, vocab, (k,), generator=g).tolist()

    prompts = [rand(int(k)) for k in torch.randint(2, 25, (n,), generator=g)]
    answers = []
    for r in range(n):
        first = rand(int(torch.randint(1, 15, (1,), generator=g)))
        row = [first]
        for v in range(1, variants):
            share = int(torch.randint(0, len(first) + 1, (1,), generator=g)) if (r + v) % 3 else 0
            row.append(first[:share] + rand(int(torch.randint(1, 10, (1,), generator=g))))
        answers.append(row)
    answers[0][0] = answers[0][0][:1]  # a one-token answer: predicted by the prompt's last position only
    answers[1][1] = list(answers[1][0])  # two identical variants
    return prompts, answers


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packed_tree_scores_equal_full_sequence_scores(random_tiny_model, tok, attn, assert_full_sequence_scores):
    model = AutoModelForCausalLM.from_pretrained(random_tiny_model, attn_implementation=attn).eval()
    assert supports_tree_scoring(model)
    prompts, answers = _items(len(tok), n=11, variants=5)
    got = score_packed(model, prompts, answers, tok.pad_token_id, batch_size=3, progress=False)
    assert_full_sequence_scores(model, got, prompts, answers, tok.pad_token_id, batch_size=7)
    per_variant = score_prefixed(model, prompts, answers, tok.pad_token_id, batch_size=4, progress=False, tree=False)
    for row_a, row_b in zip(got, per_variant):
        for a, b in zip(row_a, row_b):
            assert a.avg_loss == pytest.approx(b.avg_loss, rel=1e-5)


def test_flash_attention_models_are_not_tree_scored(random_tiny_model):
    model = AutoModelForCausalLM.from_pretrained(random_tiny_model)
    model.config._attn_implementation = "flash_attention_2"  # takes no custom 4-D mask
    assert not supports_tree_scoring(model)


def test_trie_shares_prefixes_and_points_each_token_at_its_predictor():
    trie = _Trie([[7, 8, 9, 2], [7, 8, 5, 2], [6, 2], [7, 8, 9, 2]])
    # inputs (answers without their last token): 7 8 9 | 7 8 5 | 6 | 7 8 9 → nodes 7, 8, 9, 5, 6
    assert trie.tokens == [7, 8, 9, 5, 6]
    assert trie.parents == [-1, 0, 1, 1, -1]
    assert trie.depths == [0, 1, 2, 2, 0]
    assert trie.sources == [[-1, 0, 1, 2], [-1, 0, 1, 3], [-1, 4], [-1, 0, 1, 2]]
    sees = trie.ancestors()
    assert sees[3].tolist() == [True, True, False, True, False]
    assert sees[4].tolist() == [False, False, False, False, True]
    assert _Trie([[2]]).tokens == [] and _Trie([[2]]).sources == [[-1]]


def test_pack_first_fit_decreasing():
    lengths = [5, 9, 3, 4, 6, 1, 9]
    rows = pack(lengths, 10)
    assert sorted(i for row in rows for i in row) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in row) <= 10 for row in rows)
    assert rows == [[1, 5], [6], [4, 3], [0, 2]]


def test_scores_at_with_an_index_reads_shared_rows(random_tiny_model):
    model = AutoModelForCausalLM.from_pretrained(random_tiny_model).eval()
    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(4, model.config.hidden_size, generator=g)
    index = torch.tensor([0, 0, 1, 3, 3, 3, 2])
    targets = torch.tensor([5, 6, 7, 8, 9, 10, 11])
    rows = torch.tensor([0, 0, 0, 1, 1, 2, 2])
    with torch.no_grad():
        shared = scores_at(model, hidden, targets, rows, 3, index=index)
        plain = scores_at(model, hidden[index], targets, rows, 3)
    # the same rows through the head; a matmul over 4 vs 7 rows may round differently (threads, blocking): 1e-6
    for a, b in zip(shared, plain):
        assert a.avg_loss == pytest.approx(b.avg_loss, rel=1e-6)
        np.testing.assert_allclose(a.token_logprobs, b.token_logprobs, rtol=1e-6)
        np.testing.assert_allclose(a.mu, b.mu, rtol=1e-6)
        assert a.hits.tolist() == b.hits.tolist()


def test_alibi_models_and_empty_splits_do_not_reach_the_packed_pass():
    # Falcon with ALiBi builds its bias from a 2-D mask and column indices: packed segments would be scored wrongly
    # (its forward even fails on a 4-D mask), so it takes the per-variant path; an empty split scores to [].
    from transformers import AutoConfig, AutoModelForCausalLM

    from baldro.evaluation.tree_scoring import score_packed, supports_tree_scoring

    def falcon(alibi: bool):
        config = AutoConfig.for_model("falcon", vocab_size=64, hidden_size=32, num_attention_heads=4,
                                      num_hidden_layers=2, alibi=alibi)
        config._attn_implementation = "eager"
        return AutoModelForCausalLM.from_config(config)

    assert supports_tree_scoring(falcon(False)) and not supports_tree_scoring(falcon(True))
    assert score_packed(falcon(False), [], [], pad_id=0, progress=False) == []


@pytest.mark.parametrize("tree", [True, False])
def test_moments_only_for_the_variants_that_ask_and_nothing_else_changes(random_tiny_model, tok, tree):
    model = AutoModelForCausalLM.from_pretrained(random_tiny_model).eval()
    prompts, answers = _items(len(tok), 7, 4, seed=3)
    full = score_prefixed(model, prompts, answers, tok.pad_token_id, batch_size=3, progress=False, tree=tree)
    some = score_prefixed(model, prompts, answers, tok.pad_token_id, batch_size=3, progress=False, tree=tree,
                          moments=[True, False, False, True])
    skipped = 0
    for row_full, row_some in zip(full, some):
        for v, (a, b) in enumerate(zip(row_full, row_some)):
            assert (a.avg_loss, a.prob) == (b.avg_loss, b.prob)
            assert np.array_equal(a.token_logprobs, b.token_logprobs) and np.array_equal(a.hits, b.hits)
            # computed on fewer rows of the same chunks: the same numbers; a variant that did not ask may still get
            # them at tree nodes it shares with one that did (its first token, read from the prompt's last position)
            has = ~np.isnan(b.mu)
            assert np.array_equal(has, ~np.isnan(b.sigma)) and (has.all() or v in (1, 2))
            np.testing.assert_allclose(b.mu[has], a.mu[has], rtol=1e-6)
            np.testing.assert_allclose(b.sigma[has], a.sigma[has], rtol=1e-5, atol=1e-7)
            skipped += int((~has).sum())
    assert skipped > 10
