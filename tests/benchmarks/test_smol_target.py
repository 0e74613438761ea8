"""The ~100M target-model maker's parts: it trains on the first rows of the forget and retain splits, and its
answer hit rate is the share of answer tokens the evaluator's scoring pass marks as greedy hits."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from transformers import AutoModelForCausalLM, AutoTokenizer

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
import smol_target  # noqa: E402

sys.path.remove(str(BENCHMARKS))


def _first(path: Path, n: int) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()[:n]]


def test_training_rows_are_the_first_rows_of_forget_and_retain(synth_dir: Path) -> None:
    rows = smol_target.training_rows(synth_dir, 3)
    want = _first(synth_dir / "forget10_perturbed.json", 3) + _first(synth_dir / "retain_perturbed.json", 3)
    assert rows == [{"question": r["question"], "answer": r["answer"]} for r in want]


def test_answer_hit_rate_is_the_scoring_pass_share_of_greedy_hits(synth_dir: Path, tiny_model_dir: Path,
                                                                   tmp_path: Path) -> None:
    import torch

    from baldro.data.formatting import PromptFormat, encode_qa_many
    from baldro.evaluation.scoring import score_sequences

    rows = smol_target.training_rows(synth_dir, 4)
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    encoded, _ = encode_qa_many(tok, [(r["question"], r["answer"]) for r in rows], PromptFormat(), 512)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    torch.manual_seed(0)
    for step in range(40):  # part-way to memorising: some answer tokens hit, some miss
        e = encoded[step % len(encoded)]
        opt.zero_grad()
        model(input_ids=torch.tensor([e.input_ids]), labels=torch.tensor([e.labels])).loss.backward()
        opt.step()
    model.eval().save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    scores = score_sequences(model, [e.input_ids for e in encoded], [e.labels for e in encoded], tok.pad_token_id,
                             progress=False)
    want = sum(int(s.hits.sum()) for s in scores) / sum(s.n_tokens for s in scores)
    assert 0 < want < 1 and smol_target.answer_hit_rate(tmp_path, rows) == want
