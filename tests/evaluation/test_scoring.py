"""The batched scoring pass and greedy generation against straightforward per-sequence references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from baldro.evaluation.generation import cut_at_stops, generate_greedy
from baldro.evaluation.scoring import length_batches, score_sequences


@pytest.fixture(scope="module")
def model_tok(random_tiny_model):
    model = AutoModelForCausalLM.from_pretrained(random_tiny_model).eval()
    return model, AutoTokenizer.from_pretrained(random_tiny_model)


def _encode(tok, q, a):
    p = tok(q)["input_ids"]
    ans = tok(" " + a, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    return p + ans, [-100] * len(p) + ans


def test_scores_match_unbatched_full_logits(model_tok):
    model, tok = model_tok
    pairs = [("Question: who?", "Answer number one is long"), ("Q", "x"), ("Question: what is it", "It is blue.")]
    ids, labels = zip(*[_encode(tok, q, a) for q, a in pairs])
    got = score_sequences(model, list(ids), list(labels), tok.pad_token_id, batch_size=2, progress=False)
    for s, i, lab in zip(got, ids, labels):
        with torch.no_grad():
            logits = model(torch.tensor([i])).logits[0, :-1].float()
        tgt = torch.tensor(lab[1:])
        keep = tgt != -100
        logp = torch.log_softmax(logits, -1)[keep].gather(1, tgt[keep, None])[:, 0]
        np.testing.assert_allclose(s.token_logprobs, logp.numpy(), rtol=1e-4, atol=1e-5)
        assert s.avg_loss == pytest.approx(float(-logp.mean()), rel=1e-4)
        assert s.prob == pytest.approx(math.exp(-s.avg_loss), rel=1e-5)
        assert s.hits.tolist() == (logits[keep].argmax(-1) == tgt[keep]).tolist()
        vocab = torch.log_softmax(logits[keep], -1)
        mu = (vocab.exp() * vocab).sum(-1)
        np.testing.assert_allclose(s.mu, mu.numpy(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(s.sigma, (vocab.exp() * vocab**2).sum(-1) - mu**2, rtol=1e-3, atol=1e-5)


def test_length_batches_cover_all_longest_first():
    b = length_batches([3, 9, 1, 9, 4], 2)
    assert sorted(i for x in b for i in x) == [0, 1, 2, 3, 4]
    assert b[0] == [1, 3]


def test_batched_generation_equals_one_by_one(model_tok):
    model, tok = model_tok
    prompts = [tok(q)["input_ids"] for q in ["Question: What colour", "Question: What colour is the book of author 3?", "Q"]]
    batched = generate_greedy(model, tok, prompts, 8, tok.pad_token_id, batch_size=3, progress=False)
    single = [generate_greedy(model, tok, [p], 8, tok.pad_token_id, batch_size=1, progress=False)[0] for p in prompts]
    assert batched == single


def test_cut_at_stops():
    assert cut_at_stops(" yes\n\nQuestion: more", ["\n\n", "\nQuestion", "Question:"]) == "yes"
