"""MUSE scoring as open-unlearning computes it: no EOS, last labelled token dropped where they drop it, model cap."""

from __future__ import annotations

import warnings

import pytest

from baldro.evaluation import metrics
from baldro.evaluation.model_io import prepare_model
from baldro.evaluation.muse import MuseScorer, model_position_limit

TEXTS = ["The book of author 1 is red.", "Question: who is author 2?"]


@pytest.fixture
def run(random_tiny_model):
    model, tok, pad = prepare_model(str(random_tiny_model), device="cpu")
    return MuseScorer(model, tok, pad, batch_size=2, progress=False)


def test_scored_tokens_are_the_text_tokens_without_eos(run):
    scores, labels = run.score("privleak", [("", t) for t in TEXTS], 2048)
    for text, s, lab in zip(TEXTS, scores, labels):
        text_ids = run.tok(text, add_special_tokens=False)["input_ids"]
        if not run.tok("")["input_ids"]:  # no BOS: the first text token has nothing before it (open-unlearning too)
            text_ids = text_ids[1:]
        assert [t for t in lab if t >= 0] == text_ids
        assert s.n_tokens == len(text_ids)  # EOS is not scored
        # exact memorisation / extraction strength / Min-K% see all but the last labelled token
        assert metrics.exact_memorization(s.hits[:-1]) == pytest.approx(s.hits[: len(text_ids) - 1].mean())


def test_lengths_are_capped_at_the_models_positions_with_one_warning(run):
    run.limit = 6
    with pytest.warns(UserWarning, match="max_position_embeddings=6") as caught:
        scores, labels = run.score("privleak", [("", t) for t in TEXTS], 2048)
        gens = run.rouge("verbmem", ["Author 1 wrote a long book about the sea and the river"], ["x"], 3)
    assert len([w for w in caught if "max_position_embeddings" in str(w.message)]) == 1
    assert all(len(lab) <= 6 for lab in labels) and all(s.n_tokens <= 5 for s in scores)
    assert gens["value_by_index"]["0"]["generation"] is not None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run.score("privleak2", [("", "red.")], 2048)  # short enough: nothing to say


def test_position_limit_is_read_from_the_config(run):
    assert model_position_limit(run.model) == run.model.config.max_position_embeddings


def test_verbmem_items_insert_one_space_like_open_unlearning(run):
    prompt, gt = "Author 1 wrote", "a green book."
    scores, labels = run.score("verbmem", [(prompt, gt)], 2048, insert_space=True)
    full = run.tok(prompt + " " + gt)["input_ids"]
    n_prompt = len(run.tok(prompt)["input_ids"])
    assert labels[0] == [-100] * n_prompt + full[n_prompt:]
    assert scores[0].n_tokens == len(full) - n_prompt


def test_evaluator_scores_verbmem_with_the_space_and_privleak_without(run, tmp_path, monkeypatch):
    import json

    import baldro.evaluation.muse as muse_eval

    (tmp_path / "verbmem").mkdir()
    (tmp_path / "verbmem" / "forget.json").write_text(json.dumps([{"prompt": "Author 1 wrote", "gt": "a book."}]))
    (tmp_path / "privleak").mkdir()
    for split in ("forget", "holdout"):
        (tmp_path / "privleak" / f"{split}.json").write_text(json.dumps(["The book of author 1 is red."]))
    seen = []
    real = muse_eval.pretraining_item

    def spy(tok, prefix, text, max_length, insert_space=False):
        seen.append((prefix, insert_space, max_length))
        return real(tok, prefix, text, max_length, insert_space)

    monkeypatch.setattr(muse_eval, "pretraining_item", spy)
    muse_eval.build_muse_eval(run, tmp_path, None, {"verbmem": 2, "knowmem": 2})
    assert ("Author 1 wrote", True, 2048) in seen
    assert [s for s in seen if s[0] == ""] == [("", False, 2048)] * 2
