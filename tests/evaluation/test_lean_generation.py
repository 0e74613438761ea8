"""The lean greedy loop gives transformers' greedy ``generate`` tokens, stops rows at EOS, and defers to
``generate`` where the model's generation config asks for logits processing; the memoised ROUGE equals rouge-score."""

from __future__ import annotations

import random

import pytest
import torch
from rouge_score import rouge_scorer
from transformers import AutoModelForCausalLM, AutoTokenizer

from baldro.evaluation import metrics
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
