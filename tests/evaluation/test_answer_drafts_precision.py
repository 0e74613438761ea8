"""Verified drafts under reduced precision: with engineered near-ties (two tokens whose logits tie exactly or differ by
one unit in the last place), drafted generations equal plain greedy decoding in float32, under bf16 and fp16 CPU
autocast and with a model loaded in bf16 — also where the scoring pass and decoding disagree about a drafted token.

The model is a real 2-layer Llama whose logits are exact by construction, so that every path (grouped or one-call
prefill of any length, decoding steps, the scoring pass) computes bit-identical logits: attention and MLP outputs are
zeroed (``o_proj``, ``down_proj``), each token's embedding is ``8·e_j`` (``j`` = token mod 64) and the final RMSNorm
(``eps`` 0, weight 1) maps it to exactly ``8·e_j``, so every logit is one product ``8·W[v, j]`` plus exact zeros,
exact in every dtype whose grid holds ``W``. The next token thus depends on the last token's class ``j`` only, and
each class has a top pair (``a < b``): an exact tie (``W[a, j] = W[b, j]``, argmax ``a``: the first maximal index) or
``b`` ahead by one ulp of the dtype (argmax ``b``). Plain greedy decoding is then a walk computed here by hand; a
drafted token that is not the walk's must be cut, whatever the precision."""

from __future__ import annotations

import contextlib
import functools

import numpy as np
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from baldro.evaluation import generation
from baldro.evaluation.answer_drafts import answer_draft
from baldro.evaluation.generation import generate_greedy
from baldro.evaluation.scoring import score_sequences

V, D, PAD, EOS = 96, 64, 0, 2
ULP = {torch.float32: 2.0**-23, torch.bfloat16: 2.0**-7, torch.float16: 2.0**-10}  # relative, at a power of two
TOP = 2.0**-7  # W of a class's top pair: logit 8·TOP = 1/16 (others −8)
# name: (autocast dtype or None, dtype the model is loaded in); the dtype of the logits is the grid of the near-ties
PRECISIONS = {"float32": (None, torch.float32), "bf16 autocast": (torch.bfloat16, torch.float32),
              "fp16 autocast": (torch.float16, torch.float32), "bf16 model": (None, torch.bfloat16)}


def _pairs() -> dict[int, tuple[int, int, bool]]:
    """Each class's top pair (a, b, tie): even classes tie exactly, odd ones have b ahead by one ulp; class 5's pair
    is (EOS, 70) tied (EOS wins), class 7's (EOS, 71) with 71 ahead (a draft ending in EOS there is wrong)."""
    rng = np.random.default_rng(0)
    pairs = {j: (*sorted(rng.choice(np.arange(3, V), 2, replace=False).tolist()), j % 2 == 0) for j in range(D)}
    pairs[5], pairs[7] = (EOS, 70, True), (EOS, 71, False)
    return pairs


PAIRS = _pairs()


def _walk(prompt: list[int], n: int, pick: str = "greedy") -> list[int]:
    """Up to ``n`` tokens after ``prompt`` (EOS ends, not included unless ``pick`` is not greedy): ``greedy`` takes the
    argmax (a at a tie, b one ulp ahead), ``lower`` always a (what a scoring pass that merges the one-ulp gap
    predicts), ``upper`` always b (wrong at every tie)."""
    out, x = [], prompt[-1]
    for _ in range(n):
        a, b, tie = PAIRS[x % D]
        x = {"greedy": a if tie else b, "lower": a, "upper": b}[pick]
        if x == EOS:
            return out if pick == "greedy" else [*out, EOS]
        out.append(x)
    return out


def _exact_model(grid: torch.dtype) -> LlamaForCausalLM:
    cfg = LlamaConfig(vocab_size=V, hidden_size=D, intermediate_size=D, num_hidden_layers=2, num_attention_heads=2,
                      num_key_value_heads=2, rms_norm_eps=0.0, max_position_embeddings=256, bos_token_id=1,
                      eos_token_id=EOS, pad_token_id=PAD, tie_word_embeddings=False)
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg).eval()
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        model.model.embed_tokens.weight.zero_()
        model.model.embed_tokens.weight[torch.arange(V), torch.arange(V) % D] = 8.0
        model.model.norm.weight.fill_(1.0)
        head = torch.full((V, D), -1.0)
        for j, (a, b, tie) in PAIRS.items():
            head[a, j], head[b, j] = TOP, TOP if tie else TOP * (1 + ULP[grid])
        model.lm_head.weight.copy_(head)
    return model


class _Tok:
    """Token ids as text: equal strings are equal tokens."""

    eos_token_id = EOS

    def decode(self, ids, skip_special_tokens=True):
        return " ".join(str(i) for i in ids if i not in (EOS, PAD))


@pytest.fixture(params=list(PRECISIONS))
def precision(request):
    autocast, dtype = PRECISIONS[request.param]
    grid = autocast or dtype
    model = _exact_model(grid).to(dtype)
    ctx = torch.autocast("cpu", dtype=autocast) if autocast else contextlib.nullcontext()
    with ctx:
        yield request.param, model, grid


def _prompts(n: int = 10, seed: int = 1) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    return [rng.integers(3, V, int(k)).tolist() for k in rng.integers(2, 12, n)]


def _gen(model, prompts, new, drafts=None):
    return generate_greedy(model, _Tok(), prompts, new, PAD, batch_size=4, progress=False, drafts=drafts)


def test_the_engineered_logits_tie_or_differ_by_one_ulp_in_every_path(precision):
    name, model, grid = precision
    prompts, new = _prompts(), 12
    assert _gen(model, prompts, new) == [_Tok().decode(_walk(p, new)) for p in prompts]  # plain greedy = the walk
    x = torch.tensor([[3, 4, 5, 6, 7, 8, 9]])  # classes 3 … 9 (odd: one ulp; 4, 6, 8: tie; 5 and 7: EOS pairs)
    z = model(input_ids=x).logits[0].float()
    for k, tok in enumerate(x[0].tolist()):
        a, b, tie = PAIRS[tok % D]
        assert z[k, a] == 1 / 16 and z[k, b] - z[k, a] == (0.0 if tie else ULP[grid] / 16), (name, tok)
        assert int(z[k].argmax()) == (a if tie else b)


@pytest.mark.parametrize("call_tokens", [0, 10**9])  # grouped prefill (one call per prompt length) / one call
def test_scoring_hits_that_decoding_rounds_the_other_way_are_cut_in_float32(call_tokens, monkeypatch):
    """The issue's case: a draft token with a one-ulp lower logit than decoding's argmax. float32 ``log_softmax``
    rounds ``z − logsumexp`` (≈ −0.75, ulp 6e-8) where the gap (7e-9) is lost, so the scoring pass's argmax is the
    lower id and it records a hit for the reference's token — which decoding does not choose. A trusted draft would
    put the reference's token into the generation; verification takes the prefill's own argmax of the raw logits."""
    monkeypatch.setattr(generation, "prefill_call_tokens", lambda m: call_tokens)
    model, prompts, new = _exact_model(torch.float32), _prompts(), 12
    refs = [_walk(p, new, "lower") for p in prompts]  # reference answers: the lower id of every pair, EOS included
    ids = [p + r for p, r in zip(prompts, refs)]
    labels = [[-100] * len(p) + r for p, r in zip(prompts, refs)]
    scores = score_sequences(model, ids, labels, PAD, batch_size=4, progress=False)
    drafts = [answer_draft(p, i, lab, s.hits) for p, i, lab, s in zip(prompts, ids, labels, scores)]
    want = [_Tok().decode(_walk(p, new)) for p in prompts]
    assert drafts == refs  # every reference token is a scoring hit …
    assert sum(d != _walk(p, new)[: len(d)] for p, d in zip(prompts, drafts)) >= 8  # … and most drafts go astray
    assert any(d[-1] == EOS and len(_walk(p, new)) >= len(d) for p, d in zip(prompts, drafts))  # EOS drafted early
    assert _gen(model, prompts, new, drafts) == want


def test_wrong_drafts_at_near_ties_change_nothing_in_every_precision(precision, monkeypatch):
    """Drafts wrong at an exact tie (the higher id, which argmax never takes), wrong by one ulp (the lower id, EOS
    included), random, right for a few tokens then wrong, or right: the generations are plain greedy decoding's in
    every precision and with either prefill, since each emitted token is the argmax of the logits the run computed at
    its position, and those are here the same in every forward call."""
    name, model, _ = precision
    prompts, new = _prompts(12, seed=2), 12
    right = [_right(p, new) for p in prompts]
    want = [_Tok().decode(r) for r in right]
    rng = np.random.default_rng(3)
    drafts = {
        "wrong at ties": [_walk(p, new, "upper") for p in prompts],
        "wrong by one ulp": [_walk(p, new, "lower") for p in prompts],
        "random": [rng.integers(3, V, new).tolist() for _ in prompts],
        "right then wrong": [[*r[:3], *_walk(p, new, "upper")[3:]] for p, r in zip(prompts, right)],
        "right": right,
    }
    assert any(d[-1] == EOS and len(r) > len(d) for d, r in zip(drafts["wrong by one ulp"], right))  # EOS too early
    for kind, ds in drafts.items():
        assert any(d != r[: len(d)] for d, r in zip(ds, right)) == (kind != "right"), kind
        for call_tokens in (0, 10**9):  # grouped prefill (one call per prompt + draft length) / one call
            monkeypatch.setattr(generation, "prefill_call_tokens", lambda m, c=call_tokens: c)
            assert _gen(model, prompts, new, ds) == want, (name, kind, call_tokens)


def _right(prompt: list[int], new: int) -> list[int]:
    """Plain greedy decoding's tokens, with the EOS it stops at (if it stops before ``new`` tokens)."""
    out = _walk(prompt, new)
    return out if len(out) == new else [*out, EOS]


def test_right_drafts_save_decoding_steps_in_every_precision(precision, monkeypatch):
    """A complete right draft (to EOS or the budget) costs its row one prefill and no decoding step, and such rows are
    batched apart from the others, whose decoding steps are those of their plain decoding alone."""
    name, model, _ = precision
    prompts, new = _prompts(12, seed=4), 12
    calls = {"n": 0}
    forward = type(model).forward

    @functools.wraps(forward)  # keeps the signature: the lean loop needs ``logits_to_keep``
    def counting(self, *a, **k):
        calls["n"] += 1
        return forward(self, *a, **k)

    def count(ps, drafts=None):
        calls["n"] = 0
        out = _gen(model, ps, new, drafts)
        return out, calls["n"]

    monkeypatch.setattr(type(model), "forward", counting)
    monkeypatch.setattr(generation, "prefill_call_tokens", lambda m: 10**9)  # one prefill call per batch
    want, plain = count(prompts)
    assert count(prompts, [_right(p, new) for p in prompts]) == (want, 3), name  # 3 batches of 4: a prefill each
    assert plain > 3
    # six rows with complete right drafts (2 batches: a prefill each) among six without drafts
    drafts = [_right(p, new) if k % 2 else None for k, p in enumerate(prompts)]
    alone = count(prompts[::2])
    assert count(prompts, drafts) == (want, alone[1] + 2), name
