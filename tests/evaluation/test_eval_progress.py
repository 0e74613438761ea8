"""The evaluation's progress: items done of the phase, elapsed time and ETA; generation counts questions as they stop."""

from __future__ import annotations

import io

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from baldro.evaluation.generation import generate_greedy, greedy_tokens
from baldro.evaluation.progress import ItemProgress, clock, eta_seconds, item_batches
from baldro.evaluation.scoring import score_sequences


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_clock_and_eta_formulas():
    assert clock(0) == "0:00" and clock(83.4) == "1:23" and clock(3725) == "62:05"
    assert eta_seconds(60.0, 0, 10) is None  # nothing done: no rate yet
    assert eta_seconds(60.0, 4, 10) == pytest.approx(90.0)  # 15 s an item, 6 left
    assert eta_seconds(60.0, 10, 10) == 0.0


def test_plain_stream_gets_a_line_at_start_at_most_every_30_s_and_at_the_end():
    out, t = io.StringIO(), FakeClock()
    shown = ItemProgress(10, "generating", "questions", stream=out, clock_fn=t)
    t.now = 10.0
    shown.advance(2)  # 10 s after the last line: not yet
    t.now = 60.0
    shown.advance(2)
    t.now = 150.0
    shown.advance(6)
    shown.close()
    assert out.getvalue().splitlines() == [
        "generating: 0/10 questions · 0:00 elapsed · ETA ?",
        "generating: 4/10 questions · 1:00 elapsed · ETA 1:30",
        "generating: 10/10 questions in 2:30",
    ]


def test_terminal_line_is_rewritten_in_place_and_ended_once():
    out, t = Terminal(), FakeClock()
    shown = ItemProgress(3, "forget: scoring", "rows", stream=out, clock_fn=t)
    t.now = 2.0
    shown.advance(1)
    t.now = 2.5
    shown.advance(1)  # within a second of the last draw: skipped
    t.now = 4.0
    shown.close()
    assert out.getvalue() == (
        "\rforget: scoring: 0/3 rows · 0:00 elapsed · ETA ?"
        "\rforget: scoring: 1/3 rows · 0:02 elapsed · ETA 0:04"
        "\rforget: scoring: 2/3 rows in 0:04                  \n"  # blank-padded over the longer line
    )


def test_disabled_or_empty_progress_writes_nothing():
    out = io.StringIO()
    ItemProgress(5, "x", enabled=False, stream=out).close()
    ItemProgress(0, "x", stream=out).close()
    assert out.getvalue() == ""


def test_item_batches_count_items_not_batches(monkeypatch):
    seen = []
    monkeypatch.setattr(ItemProgress, "advance", lambda self, n=1: seen.append((self.total, n)))
    assert list(item_batches([[0, 1, 2], [3]], "d", False)) == [[0, 1, 2], [3]]
    assert seen == [(4, 3), (4, 1)]


@pytest.fixture(scope="module")
def model_tok(random_tiny_model):
    return AutoModelForCausalLM.from_pretrained(random_tiny_model).eval(), AutoTokenizer.from_pretrained(random_tiny_model)


def test_greedy_tokens_reports_every_row_once_as_it_stops(model_tok):
    model, tok = model_tok
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, len(tok), (6, 9), generator=g)
    mask = torch.ones_like(ids)
    free = greedy_tokens(model, ids, mask, 12, None)
    eos = free[0][2]  # row 0 stops at step 2; the others when they meet that token or the budget
    steps: list[int] = []
    rows = greedy_tokens(model, ids, mask, 12, eos, on_done=steps.append)
    assert sum(steps) == 6 and all(k > 0 for k in steps)
    assert len(steps) > 1  # rows stop at different steps: the count moves inside the batch
    assert rows == greedy_tokens(model, ids, mask, 12, eos)


@pytest.mark.parametrize("pad_masking", ["position", "token"])  # the lean loop, and transformers' generate
def test_generate_greedy_counts_every_question_once(model_tok, pad_masking, monkeypatch):
    model, tok = model_tok
    prompts = [tok(f"Question {i}: who wrote book {i}?")["input_ids"] for i in range(5)]
    shown: list[ItemProgress] = []
    real_init = ItemProgress.__init__

    def spy(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        shown.append(self)

    monkeypatch.setattr(ItemProgress, "__init__", spy)
    generate_greedy(model, tok, prompts, 8, tok.pad_token_id, batch_size=2, progress=False, pad_masking=pad_masking)
    assert [(p.desc, p.unit, p.total, p.done) for p in shown] == [("generating", "questions", 5, 5)]


def test_scoring_prints_its_phase_with_rows_and_time(model_tok, capsys):
    model, tok = model_tok
    ids = [tok(f"row {i} text")["input_ids"] for i in range(3)]
    score_sequences(model, ids, [list(r) for r in ids], tok.pad_token_id, batch_size=2, desc="forget: scoring")
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "forget: scoring: 0/3 rows · 0:00 elapsed · ETA ?"
    assert err[-1].startswith("forget: scoring: 3/3 rows in ")
