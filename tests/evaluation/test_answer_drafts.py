"""Answer drafts: the leading answer tokens a scoring pass found to be the model's greedy choice are prefilled instead
of decoded, and the generations stay those of step-by-step greedy decoding (and of transformers' ``generate``)."""

from __future__ import annotations

import contextlib
import functools
import json
from collections import Counter

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

import baldro.evaluation.tofu as tofu
from baldro.data.formatting import PromptFormat, encode_prompt
from baldro.evaluation import generation
from baldro.evaluation.answer_drafts import answer_draft
from baldro.evaluation.generation import generate_greedy, greedy_tokens
from baldro.evaluation.scoring import left_pad

IGN = -100


def test_answer_draft_is_the_answer_up_to_the_first_miss():
    prompt, answer = [5, 6, 7], [10, 11, 12, 2]
    ids, labels = prompt + answer, [IGN] * 3 + answer
    assert answer_draft(prompt, ids, labels, np.array([True, True, True, True])) == answer
    assert answer_draft(prompt, ids, labels, np.array([True, True, False, True])) == [10, 11]
    assert answer_draft(prompt, ids, labels, np.array([False, True, True, True])) == []


@pytest.mark.parametrize("case", ["other prompt", "labelled prompt token", "unlabelled answer token", "hits length"])
def test_answer_draft_is_empty_unless_ids_are_the_generation_prompt_then_labelled_answer(case):
    prompt, answer = [5, 6, 7], [10, 11, 2]
    ids, labels, hits = prompt + answer, [IGN] * 3 + answer, np.ones(3, dtype=bool)
    if case == "other prompt":  # e.g. the scored sequence's prompt was truncated differently
        ids = [5, 6, 8] + answer
    elif case == "labelled prompt token":
        labels = [IGN, IGN, 7] + answer
    elif case == "unlabelled answer token":
        labels = [IGN] * 3 + [10, IGN, 2]
    else:
        hits = np.ones(2, dtype=bool)
    assert answer_draft(prompt, ids, labels, hits) == []


@pytest.fixture(scope="module")
def model_tok(random_tiny_model):
    return AutoModelForCausalLM.from_pretrained(random_tiny_model).eval(), AutoTokenizer.from_pretrained(random_tiny_model)


def _prompts(tok, n: int, seed: int = 0) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(5, len(tok), (int(k),), generator=g).tolist() for k in torch.randint(2, 15, (n,), generator=g)]


def test_greedy_tokens_with_budgets_stop_each_row_after_its_budget(model_tok):
    model, tok = model_tok
    prompts = _prompts(tok, 5)
    width = max(map(len, prompts))
    ids = torch.full((5, width), tok.pad_token_id)
    mask = torch.zeros((5, width), dtype=torch.long)
    for r, p in enumerate(prompts):
        ids[r, width - len(p) :], mask[r, width - len(p) :] = torch.tensor(p), 1
    full = greedy_tokens(model, ids, mask, 20, None)  # no EOS: every row runs its whole budget
    budgets = [1, 20, 7, 3, 12]
    assert greedy_tokens(model, ids, mask, 20, None, budgets=budgets) == [row[:b] for row, b in zip(full, budgets)]
    with pytest.raises(ValueError, match="at least one new token"):
        greedy_tokens(model, ids, mask, 20, None, budgets=[0, 1, 1, 1, 1])


def _alone(model, prompt: list[int], new: int, eos: int | None) -> list[int]:
    return greedy_tokens(model, torch.tensor([prompt]), torch.ones((1, len(prompt)), dtype=torch.long), new, eos)[0]


def test_drafted_generations_equal_decoded_ones_and_decode_fewer_steps(model_tok, random_tiny_model, monkeypatch):
    model, _ = model_tok
    tok = AutoTokenizer.from_pretrained(random_tiny_model)
    prompts, new = _prompts(tok, 9, seed=1), 16
    eos = _alone(model, prompts[0], new, None)[4]  # a token the model produces: as EOS, some rows stop early
    tok.eos_token = tok.convert_ids_to_tokens(eos)
    tokens = [_alone(model, p, new, eos) for p in prompts]
    ended = [i for i, t in enumerate(tokens) if len(t) < new]
    assert ended and len(ended) < len(prompts)
    want = generate_greedy(model, tok, prompts, new, tok.pad_token_id, batch_size=4, progress=False)
    # drafts of every kind: none, empty, part of a continuation, all of it up to the budget, all of it then EOS
    drafts = [None, [], *[t[: k] for t, k in zip(tokens[2:], (1, 5, new, new - 1, 3, 9, new))]]
    for i in ended:
        drafts[i] = [*tokens[i], eos]
    calls = {"forward": 0}
    forward = type(model).forward

    @functools.wraps(forward)  # keeps the signature: the lean loop needs ``logits_to_keep``
    def counting(self, *a, **k):
        calls["forward"] += 1
        return forward(self, *a, **k)

    monkeypatch.setattr(type(model), "forward", counting)
    assert generation.lean_greedy_supported(model)
    assert generate_greedy(model, tok, prompts, new, tok.pad_token_id, batch_size=4, progress=False) == want
    plain_calls, calls["forward"] = calls["forward"], 0
    got = generate_greedy(model, tok, prompts, new, tok.pad_token_id, batch_size=4, progress=False, drafts=drafts)
    assert got == want
    long_drafts = [t[:12] for t in tokens]  # every row drafted 12 tokens: at most 4 decoding steps a batch
    calls["forward"] = 0
    assert generate_greedy(model, tok, prompts, new, tok.pad_token_id, batch_size=4, progress=False,
                           drafts=long_drafts) == want
    assert calls["forward"] < plain_calls / 2


# grouped prefill (a call per prompt length) / one call / calls of at most 2 rows' logits (each row's draft + 1)
@pytest.mark.parametrize(("call_tokens", "logit_rows"), [(0, None), (10**9, None), (10**9, 2)])
def test_wrong_drafts_are_cut_where_they_leave_greedy_decoding(model_tok, monkeypatch, call_tokens, logit_rows):
    """Drafts wrong from the first token, wrong after a few right ones (then random), random, or right: the draft
    positions after the first wrong token are in the cache but must be invisible (masked; positions count accepted
    tokens only), else every later token would be computed from other keys and positions. float32 on CPU, where this
    model's prefill and decoding steps give the same argmax (as the lean loop's equality with ``generate``)."""
    model, tok = model_tok
    monkeypatch.setattr(generation, "prefill_call_tokens", lambda m: call_tokens)
    prompts, new = _prompts(tok, 9, seed=2), 12
    if logit_rows:
        monkeypatch.setattr(generation, "LOGIT_ELEMENTS", logit_rows * (new + 1) * len(tok))
    right = [_alone(model, p, new, tok.eos_token_id) for p in prompts]
    want = generate_greedy(model, tok, prompts, new, tok.pad_token_id, batch_size=4, progress=False)
    g = torch.Generator().manual_seed(5)
    rand = [torch.randint(5, len(tok), (new,), generator=g).tolist() for _ in prompts]
    other = [[(t + 1) % len(tok) or 5] for t in (r[0] for r in right)]  # never the model's first token
    drafts = {"wrong first": [[*o, *r[1:]] for o, r in zip(other, right)], "random": rand,
              "right then random": [[*r[:k], *x[k:]] for k, r, x in zip(range(1, 10), right, rand)], "right": right}
    for kind, ds in drafts.items():
        assert any(d != r[: len(d)] for d, r in zip(ds, right)) == (kind != "right"), kind
        got = generate_greedy(model, tok, prompts, new, tok.pad_token_id, batch_size=4, progress=False, drafts=ds)
        assert got == want, kind


def test_drafts_are_ignored_where_generate_runs_and_need_one_per_prompt(model_tok, monkeypatch):
    model, tok = model_tok
    prompts = _prompts(tok, 3, seed=2)
    plain = generate_greedy(model, tok, prompts, 8, tok.pad_token_id, progress=False)
    monkeypatch.setattr(generation, "lean_greedy_supported", lambda m, s=(): False)
    assert generate_greedy(model, tok, prompts, 8, tok.pad_token_id, progress=False, drafts=[[7, 8], None, []]) == plain
    monkeypatch.undo()
    with pytest.raises(ValueError, match="2 drafts for 3 prompts"):
        generate_greedy(model, tok, prompts, 8, tok.pad_token_id, progress=False, drafts=[[7, 8], None])


def test_verify_drafts_accepts_up_to_the_first_token_that_is_not_the_prefill_argmax():
    # 3 rows, width 6, K = 4 kept positions; row 0 drafts 3 tokens (10 11 12), row 1 none, row 2 two (20 21)
    ids = torch.tensor([[1, 2, 3, 10, 11, 12], [0, 0, 1, 2, 3, 4], [0, 1, 2, 3, 20, 21]])
    greedy = torch.tensor([[10, 11, 99, 98],  # predicts 10 ✓, 11 ✓, 99 ≠ 12: accept 2, next 99
                           [-1, -1, -1, 40],  # no draft: the last position's argmax
                           [-1, 20, 21, 22]])  # both right: accept 2, next 22 (after the whole draft)
    accepted, nxt = generation.verify_drafts(ids, greedy, [3, 0, 2], [9, 9, 9])
    assert accepted == [2, 0, 2] and nxt.tolist() == [99, 40, 22]
    accepted, nxt = generation.verify_drafts(ids, greedy, [3, 0, 2], [9, 9, 2])  # row 2's budget: 2 new tokens
    assert accepted == [2, 0, 1] and nxt.tolist() == [99, 40, 21]  # its last token is the prefill's choice there


def test_greedy_tokens_with_drafted_rows_return_the_accepted_draft_then_decoding(model_tok):
    model, tok = model_tok
    prompts, new = _prompts(tok, 4, seed=6), 10
    right = [_alone(model, p, new, None) for p in prompts]
    seqs = [[*prompts[0], *right[0][:4]], [*prompts[1], *right[1][:2], 7, 7], prompts[2], [*prompts[3], 5]]
    width = max(map(len, seqs))
    ids = torch.full((4, width), tok.pad_token_id)
    mask = torch.zeros((4, width), dtype=torch.long)
    for r, s in enumerate(seqs):
        ids[r, width - len(s) :], mask[r, width - len(s) :] = torch.tensor(s), 1
    assert right[1][2] != 7 and right[3][0] != 5  # drafts: right ×4; right ×2 then wrong; none; wrong
    assert greedy_tokens(model, ids, mask, new, None, drafted=[4, 4, 0, 1]) == right
    assert greedy_tokens(model, ids, mask, new, None, budgets=[3, 10, 1, 2], drafted=[4, 4, 0, 1]) == [
        right[0][:3], right[1], right[2][:1], right[3][:2]]
    with pytest.raises(ValueError, match="shorter than its input"):
        greedy_tokens(model, ids, mask, new, None, drafted=[0, 0, len(prompts[2]), 0])


@pytest.mark.parametrize("precision", ["bf16 autocast", "fp16 autocast", "bf16 model"])
def test_a_draft_wrong_at_an_exact_tie_is_cut_on_a_memorising_model_in_bf16_and_fp16(memorised_tiny_model, mini_tofu,
                                                                                     precision):
    """A real network in reduced precision. The LM-head row of the token plain decoding emits most often (``t``) is
    copied to a higher id ``t2``: their logits are equal in every forward call (same row, same hidden state) and
    argmax takes the first maximal index, so decoding emits ``t``; drafts that put ``t2`` wherever decoding emits ``t``
    are wrong at exact ties, where a trusted draft would emit ``t2``. Equality with plain decoding also needs the
    prefill and the decoding steps to pick the same token everywhere else, which reduced precision does not promise
    at near-ties (shapes differ, so roundings do); the rows used lead the runner-up by at least 1 nat at every
    position (asserted), far above bf16's rounding of these logits (|z| < 30: < 0.12 per rounding)."""
    autocast, dtype = {"bf16 autocast": (torch.bfloat16, torch.float32), "fp16 autocast": (torch.float16, torch.float32),
                       "bf16 model": (None, torch.bfloat16)}[precision]
    tok = AutoTokenizer.from_pretrained(memorised_tiny_model)
    model = AutoModelForCausalLM.from_pretrained(memorised_tiny_model).eval()
    questions = [json.loads(line)["question"] for name in ("forget10", "retain", "real_authors", "world_facts")
                 for line in (mini_tofu / f"{name}_perturbed.json").read_text().splitlines()]
    prompts = [encode_prompt(tok, q, PromptFormat(), 512) for q in questions]
    eos, new = tok.eos_token_id, 40
    ids, mask = left_pad(prompts, tok.pad_token_id, torch.device("cpu"))
    emitted = Counter(t for row in greedy_tokens(model, ids, mask, new, eos) for t in row)
    t, t2 = emitted.most_common(1)[0][0], len(tok) - 1
    assert t2 > t and t2 not in emitted
    with torch.no_grad():
        model.lm_head.weight[t2] = model.lm_head.weight[t]
    model.to(dtype)
    with torch.autocast("cpu", dtype=autocast) if autocast else contextlib.nullcontext():
        plain = greedy_tokens(model, ids, mask, new, eos)
        keep = []
        for i, (p, row) in enumerate(zip(prompts, plain)):
            with torch.no_grad():
                z = model(input_ids=torch.tensor([[*p, *row]])).logits[0, len(p) - 1 :].float()
            z[:, t2] = -torch.inf  # t's twin ties it exactly: the margin is to the next other token
            top = z.topk(2, dim=-1).values
            if len(row) < new and bool((top[:, 0] - top[:, 1] >= 1.0).all()):
                keep.append(i)
        assert len(keep) >= 12
        prompts = [prompts[i] for i in keep]
        drafts = [[t2 if x == t else x for x in plain[i]] + [eos] for i in keep]  # each row's draft reaches EOS
        assert sum(d.count(t2) for d in drafts) >= 12
        want = generate_greedy(model, tok, prompts, new, tok.pad_token_id, batch_size=4, progress=False)
        assert want == [tok.decode(plain[i], skip_special_tokens=True).strip() for i in keep]
        got = generate_greedy(model, tok, prompts, new, tok.pad_token_id, batch_size=4, progress=False, drafts=drafts)
    assert got == want


def _leaves(x, path=""):
    if isinstance(x, dict):
        for k, v in x.items():
            yield from _leaves(v, f"{path}/{k}")
    else:
        yield path, x


def test_tofu_eval_of_a_memorising_model_drafts_answers_and_keeps_every_value(memorised_tiny_model, mini_tofu,
                                                                             seen_drafts):
    model = AutoModelForCausalLM.from_pretrained(memorised_tiny_model).eval()
    tok = AutoTokenizer.from_pretrained(memorised_tiny_model)
    seen = seen_drafts

    def run(draft_answers: bool) -> dict:
        _, ev = tofu.evaluate_tofu(model, str(mini_tofu), tokenizer=tok, batch_size=3, max_new_tokens=40,
                                   progress=False, return_eval=True, draft_answers=draft_answers)
        return dict(_leaves({k: v for k, v in ev.items() if isinstance(v, dict) and ("value_by_index" in v or "forget" in v)}))

    drafted = run(True)
    drafts = seen.pop()
    plain = run(False)
    assert seen.pop() is None
    answered = [k for k, v in plain.items() if k.endswith("/generation") and "/forget_Q_A_ROUGE/" in k]
    assert answered and drafted == plain  # every per-item value and every generation
    # the model reproduces the answers it was trained on: their drafts run to EOS; world facts (unseen) draft little
    n = len(drafts) // 4
    forget, wf = drafts[:n], drafts[3 * n :]
    assert all(d and d[-1] == tok.eos_token_id for d in forget)
    assert sum(map(len, wf)) < sum(map(len, forget))
    assert plain["/forget_Q_A_ROUGE/value_by_index/0/rougeL_recall"] == 1.0


def test_no_new_tokens_gives_empty_generations_with_or_without_drafts(model_tok):
    model, tok = model_tok
    prompts = _prompts(tok, 3, seed=4)
    assert generate_greedy(model, tok, prompts, 0, tok.pad_token_id, progress=False) == ["", "", ""]
    assert generate_greedy(model, tok, prompts, 0, tok.pad_token_id, progress=False, drafts=[[7], None, []]) == [""] * 3
