"""Answer drafts: the leading answer tokens a scoring pass found to be the model's greedy choice are prefilled instead
of decoded, and the generations stay those of step-by-step greedy decoding (and of transformers' ``generate``)."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

import baldro.evaluation.tofu as tofu
from baldro.evaluation import generation
from baldro.evaluation.answer_drafts import answer_draft
from baldro.evaluation.generation import generate_greedy, greedy_tokens

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


def test_a_draft_is_trusted_and_is_ignored_where_generate_runs(model_tok, monkeypatch):
    model, tok = model_tok
    prompts = _prompts(tok, 3, seed=2)
    plain = generate_greedy(model, tok, prompts, 8, tok.pad_token_id, progress=False)
    odd = [7, 8]
    assert not plain[0].startswith(tok.decode(odd).strip())  # not what the model would choose first
    drafted = generate_greedy(model, tok, prompts, 8, tok.pad_token_id, progress=False, drafts=[odd, None, None])
    assert drafted[0].startswith(tok.decode(odd, skip_special_tokens=True).strip()) and drafted[1:] == plain[1:]
    monkeypatch.setattr(generation, "lean_greedy_supported", lambda m, s=(): False)
    assert generate_greedy(model, tok, prompts, 8, tok.pad_token_id, progress=False, drafts=[odd, None, None]) == plain
    with pytest.raises(ValueError, match="2 drafts for 3 prompts"):
        monkeypatch.undo()
        generate_greedy(model, tok, prompts, 8, tok.pad_token_id, progress=False, drafts=[odd, None])


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
