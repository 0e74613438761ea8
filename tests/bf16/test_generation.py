"""Greedy generation under bf16 against float32: the lean decoding loop (``greedy_tokens``: grouped prefill, growing
KV cache, finished rows leaving) with the model stored in bf16 (``eval --dtype bfloat16``, open-unlearning's
evaluation) and with float32 weights under bf16 autocast (an unlearning curve evaluated inside bf16 training).

Greedy decoding is discontinuous: at a near-tie bf16 noise may pick the other token, after which the rows diverge
legitimately. So the comparison is conditional, with the condition measured: a row each of whose float32 greedy
steps wins by a top-2 logit gap larger than twice the largest bf16-vs-float32 logit difference at that step
(teacher-forced on the float32 tokens; the factor 2 covers the decoding loop's cached steps rounding differently
from the full forward) keeps its argmax, and must decode to the same tokens in bf16 — by our loop and by
transformers' ``generate``. On the memorised tiny model (a TOFU target in miniature) most rows qualify;
the test requires ¾ of them to, so it cannot pass vacuously.
"""

from __future__ import annotations

import contextlib
import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from baldro.data.formatting import PromptFormat, encode_prompt
from baldro.evaluation.generation import greedy_tokens

from .conftest import EVAL_ITEMS, SPLITS

NEW_TOKENS = 12


def _prompts(synth_dir, tok) -> tuple[torch.Tensor, torch.Tensor]:
    questions = []
    for name in SPLITS:
        for line in (synth_dir / f"{name}.json").read_text().splitlines()[:EVAL_ITEMS]:
            questions.append(json.loads(line)["question"])
    prompts = [encode_prompt(tok, q, PromptFormat()) for q in questions]
    width = max(map(len, prompts))
    ids = torch.full((len(prompts), width), tok.pad_token_id)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for r, p in enumerate(prompts):
        ids[r, width - len(p) :], mask[r, width - len(p) :] = torch.tensor(p), 1
    return ids, mask


def _teacher_forced_logits(model, ids, mask, tokens, context) -> list[torch.Tensor]:
    """Float32 logits ``[len(tokens[r]), V]`` that ``model`` gives row r's prompt followed by ``tokens[r]``, at the
    positions that chose each of those tokens."""
    out = []
    for r, row in enumerate(tokens):
        prompt = ids[r][mask[r].bool()]
        seq = torch.cat([prompt, torch.tensor(row, dtype=torch.long)])[None]
        with torch.no_grad(), context():
            logits = model(input_ids=seq).logits[0].float()
        out.append(logits[len(prompt) - 1 : len(prompt) - 1 + len(row)])
    return out


def _hf_greedy(model, tok, ids, mask, context) -> list[list[int]]:
    with torch.no_grad(), context():
        out = model.generate(input_ids=ids, attention_mask=mask, do_sample=False, max_new_tokens=NEW_TOKENS,
                             pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    rows = out[:, ids.shape[1] :].tolist()
    return [row[: row.index(tok.eos_token_id)] if tok.eos_token_id in row else row for row in rows]


@pytest.mark.parametrize("precision", ["bf16-weights", "autocast"])
def test_greedy_generation_in_bf16_equals_float32_where_no_step_is_a_near_tie(memorised_model, synth_dir, precision):
    tok = AutoTokenizer.from_pretrained(memorised_model)
    f32 = AutoModelForCausalLM.from_pretrained(memorised_model).eval()
    if precision == "bf16-weights":
        low, context = AutoModelForCausalLM.from_pretrained(memorised_model, dtype=torch.bfloat16).eval(), contextlib.nullcontext
    else:
        low, context = f32, (lambda: torch.autocast("cpu", dtype=torch.bfloat16))
    ids, mask = _prompts(synth_dir, tok)
    eos = tok.eos_token_id
    with torch.no_grad():
        want = greedy_tokens(f32, ids, mask, NEW_TOKENS, eos)
        with context():
            got = greedy_tokens(low, ids, mask, NEW_TOKENS, eos)
    hf = _hf_greedy(low, tok, ids, mask, context)
    # teacher-force the float32 choices, EOS included where the row stopped
    chosen = [row + [eos] if len(row) < NEW_TOKENS else row for row in want]
    z32 = _teacher_forced_logits(f32, ids, mask, chosen, contextlib.nullcontext)
    z16 = _teacher_forced_logits(low, ids, mask, chosen, context)
    qualifying = []
    for r, (a, b) in enumerate(zip(z32, z16)):
        top2 = a.topk(2, dim=-1).values
        gap = top2[:, 0] - top2[:, 1]  # per step
        noise = (a - b).abs().amax(dim=-1)  # per step, over the vocabulary
        assert float(noise.min()) > 0, "bf16 never ran"  # a float32-only code path gives identical logits
        assert torch.equal(a.argmax(-1), torch.tensor(chosen[r]))  # teacher forcing reproduces the float32 loop
        if bool((gap > 2 * noise).all()):
            qualifying.append(r)
    assert len(qualifying) >= 0.75 * len(want), f"only {len(qualifying)} of {len(want)} rows free of near-ties"
    for r in qualifying:
        assert got[r] == want[r], f"row {r}: lean loop in bf16 {got[r]} vs float32 {want[r]}"
        assert hf[r] == want[r], f"row {r}: generate in bf16 {hf[r]} vs float32 {want[r]}"
