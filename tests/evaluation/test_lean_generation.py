"""The lean greedy loop gives transformers' greedy ``generate`` tokens, stops rows at EOS, and defers to
``generate`` where the model's generation config asks for logits processing; the memoised ROUGE equals rouge-score."""

from __future__ import annotations

import random

import pytest
import torch
from rouge_score import rouge_scorer
from transformers import AutoModelForCausalLM, AutoTokenizer

from baldro.evaluation import generation, kv_cache, metrics
from baldro.evaluation.generation import generate_greedy, greedy_tokens, lean_greedy_supported


@pytest.fixture(scope="module")
def model_tok(random_tiny_model):
    model = AutoModelForCausalLM.from_pretrained(random_tiny_model).eval()
    return model, AutoTokenizer.from_pretrained(random_tiny_model)


def _left_padded(tok, n_rows: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(2, 20, (n_rows,), generator=g).tolist()
    width = max(lengths)
    ids = torch.full((n_rows, width), tok.pad_token_id)
    mask = torch.zeros((n_rows, width), dtype=torch.long)
    for r, n in enumerate(lengths):
        ids[r, width - n :] = torch.randint(5, len(tok), (n,), generator=g)
        mask[r, width - n :] = 1
    return ids, mask


def _hf(model, tok, ids, mask, new: int, eos: int) -> list[list[int]]:
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=mask, do_sample=False, max_new_tokens=new,
                             pad_token_id=tok.pad_token_id, eos_token_id=eos, use_cache=True)
    rows = out[:, ids.shape[1] :].tolist()
    return [row[: row.index(eos)] if eos in row else row for row in rows]


def test_lean_greedy_tokens_equal_generate_with_and_without_early_eos(model_tok):
    model, tok = model_tok
    assert lean_greedy_supported(model)
    ids, mask = _left_padded(tok, 7)
    ref = _hf(model, tok, ids, mask, 40, tok.eos_token_id)
    assert greedy_tokens(model, ids, mask, 40, tok.eos_token_id) == ref
    eos = ref[0][3]  # a token row 0 produces at step 3: rows stop at different steps and leave the batch
    ref_eos = _hf(model, tok, ids, mask, 40, eos)
    assert len({len(r) for r in ref_eos}) > 1 and len(ref_eos[0]) == 3
    assert greedy_tokens(model, ids, mask, 40, eos) == ref_eos
    for compact_at in (0.0, 0.5, 1.0):  # finished rows leave at once, in groups, or never (their outputs ignored)
        assert greedy_tokens(model, ids, mask, 40, eos, compact_at=compact_at) == ref_eos
    no_pad = torch.ones_like(mask)  # no padding: generate drops the mask, so does the loop
    assert greedy_tokens(model, ids, no_pad, 12, tok.eos_token_id) == _hf(model, tok, ids, no_pad, 12, tok.eos_token_id)


def test_generation_config_with_a_logits_processor_uses_generate(model_tok):
    model, tok = model_tok
    prompts = [tok("Question: who wrote it?")["input_ids"], tok("Q")["input_ids"]]
    plain = generate_greedy(model, tok, prompts, 16, tok.pad_token_id, batch_size=2, progress=False)
    model.generation_config.repetition_penalty = 5.0
    try:
        assert not lean_greedy_supported(model)
        penalised = generate_greedy(model, tok, prompts, 16, tok.pad_token_id, batch_size=2, progress=False)
        ref = model.generate(input_ids=torch.tensor([prompts[0]]), do_sample=False, max_new_tokens=16,
                             pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)[0, len(prompts[0]) :].tolist()
    finally:
        model.generation_config.repetition_penalty = 1.0
    ref = ref[: ref.index(tok.eos_token_id)] if tok.eos_token_id in ref else ref
    assert penalised[0] == tok.decode(ref, skip_special_tokens=True).strip()
    assert lean_greedy_supported(model) and penalised != plain


def test_memoised_rouge_equals_rouge_score():
    rng = random.Random(0)
    words = ["The", "author", "wrote", "many", "books", "about", "running", "runs", "ran", "cats", "dog's", "1999", "Paris,", "happily", "happiness"]
    ref = rouge_scorer.RougeScorer(["rouge1", "rougeL"], use_stemmer=True)
    for _ in range(200):
        gen = " ".join(rng.choices(words, k=rng.randint(0, 30)))
        truth = " ".join(rng.choices(words, k=rng.randint(0, 30)))
        for _ in range(2):  # the second call reads the memo
            want = ref.score(truth, gen)
            assert metrics.rouge_scores(gen, truth) == {
                "rouge1_recall": want["rouge1"].recall,
                "rougeL_f1": want["rougeL"].fmeasure,
                "rougeL_recall": want["rougeL"].recall,
            }


def test_prefill_groups_minimise_calls_plus_padding():
    lengths = [5, 9, 9, 2, 8]  # sorted: rows 1, 2 (9), 4 (8), 0 (5), 3 (2)
    assert generation.prefill_groups(lengths, 0) == [[1, 2], [4], [0], [3]]  # calls free: no padding at all
    assert generation.prefill_groups(lengths, 10**6) == [[1, 2, 4, 0, 3]]  # calls dear: one padded batch
    # a call = 4 positions: {9,9,8}{5,2} costs 4 + 27 + 4 + 10 = 45; one batch 4 + 45 = 49; {9,9,8}{5}{2} 46;
    # {9,9,8,5}{2} 46; {9,9}{8}{5,2} 48; {9,9}{8,5}{2} 48; {9,9}{8,5,2} 50
    assert generation.prefill_groups(lengths, 4) == [[1, 2, 4], [0, 3]]


def test_logit_groups_cut_a_prefill_where_its_logits_would_pass_the_limit(monkeypatch):
    monkeypatch.setattr(generation, "LOGIT_ELEMENTS", 100)  # vocabulary 10: 10 row-positions of logits a call
    # rows 0, 1 keep 2 × (4 + 1) positions = 100 elements; with row 2, 3 × 5 × 10 = 150; rows 2, 3: 2 × 2 × 10 = 40;
    # row 4 alone keeps 21 × 10 = 210 (one row a call at least)
    assert generation.logit_groups([[0, 1, 2, 3], [4]], [0, 4, 1, 0, 20], 10) == [[0, 1], [2, 3], [4]]
    assert generation.logit_groups([[3, 1, 0]], [0, 0, 0, 0], 10) == [[3, 1, 0]]  # no drafts: 3 × 1 × 10


def test_compact_rows_moves_only_the_last_live_rows_into_the_gaps():
    cache = kv_cache.GrowingCache(reserve=8)
    keys = torch.arange(6 * 2 * 3 * 4, dtype=torch.float32).reshape(6, 2, 3, 4)
    cache.update(keys, -keys, 0)
    storage = cache.layers[0]._k.data_ptr()
    order = cache.compact_rows([0, 2, 4, 5])  # rows 1 and 3 finished: 4 and 5 move into slots 1 and 3
    assert order == [0, 4, 2, 5]
    assert torch.equal(cache.layers[0].keys, keys[order]) and torch.equal(cache.layers[0].values, -keys[order])
    assert cache.layers[0]._k.data_ptr() == storage  # same buffer: rows 0 and 2 were not copied
    cache.update(torch.ones(4, 2, 1, 4), torch.ones(4, 2, 1, 4), 0)  # decoding goes on with 4 rows
    assert cache.layers[0].keys.shape == (4, 2, 4, 4) and torch.equal(cache.layers[0].keys[:, :, :3], keys[order])
    assert cache.compact_rows([0, 1, 2, 3]) == [0, 1, 2, 3]


def test_assemble_prompts_right_aligns_groups_over_zero_padding():
    a, b = kv_cache.GrowingCache(), kv_cache.GrowingCache()
    ka, kb = torch.randn(2, 1, 3, 2), torch.randn(1, 1, 5, 2)
    a.update(ka, ka + 1, 0)
    b.update(kb, kb + 1, 0)
    cache = kv_cache.assemble_prompts([([0, 2], a), ([1], b)], 3, 5, reserve=9)
    k, v = cache.layers[0].keys, cache.layers[0].values
    assert k.shape == (3, 1, 5, 2) and cache.get_seq_length() == 5 and cache.layers[0]._k.shape[2] == 9
    assert torch.equal(k[[0, 2], :, 2:], ka) and torch.equal(v[[0, 2], :, 2:], ka + 1) and torch.equal(k[1], kb[0])
    assert not k[[0, 2], :, :2].any() and not v[[0, 2], :, :2].any()


@pytest.mark.parametrize("call_tokens", [0, 6])
def test_grouped_prefill_and_immediate_compaction_equal_generate(model_tok, monkeypatch, call_tokens):
    model, tok = model_tok
    monkeypatch.setattr(generation, "prefill_call_tokens", lambda m: call_tokens)  # several prefill groups
    ids, mask = _left_padded(tok, 9, seed=3)
    lengths = mask.sum(-1).tolist()
    assert len(generation.prefill_groups(lengths, call_tokens)) > 2
    ref = _hf(model, tok, ids, mask, 30, tok.eos_token_id)
    eos = ref[2][4]  # rows finish at different steps
    ref_eos = _hf(model, tok, ids, mask, 30, eos)
    assert len({len(r) for r in ref_eos}) > 2
    for e, want in ((tok.eos_token_id, ref), (eos, ref_eos)):
        for group_prefill in (True, False):
            for compact_at in (0.0, 0.3, 1.0):
                got = greedy_tokens(model, ids, mask, 30, e, compact_at=compact_at, group_prefill=group_prefill)
                assert got == want, (e, group_prefill, compact_at)


def test_prefill_call_cost_counts_dispatch_on_cpu_and_one_call_on_a_gpu(model_tok, monkeypatch):
    model, _ = model_tok
    params = sum(p.numel() for p in model.parameters())  # 2 layers: dispatch of 3 × 3e6 FLOP in 2·params positions
    assert generation.prefill_call_tokens(model) == 32 + round(9e6 / (2 * params))
    monkeypatch.setattr(generation, "model_device", lambda m: torch.device("cuda"))
    assert generation.prefill_call_tokens(model) >= 1 << 30  # one group: prefill_groups never cuts
    assert len(generation.prefill_groups([3, 50, 7, 20], generation.prefill_call_tokens(model))) == 1
