"""Fixtures of the evaluation tests: small files in open-unlearning's TOFU_EVAL.json shape, written by the tests, and
the check that a fast scoring path gives the scores of full-sequence passes."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import numpy as np
import pytest


def _prob_entry(rng: random.Random, n: int, k: int | None = None) -> dict:
    items = {}
    for i in range(n):
        if k is None:
            loss = rng.uniform(0.2, 3.0)
            items[str(i)] = {"prob": math.exp(-loss), "avg_loss": loss}
        else:
            losses = [rng.uniform(0.5, 4.0) for _ in range(k)]
            items[str(i)] = {"prob": [math.exp(-x) for x in losses], "avg_loss": losses}
    return {"agg_value": 0.0, "value_by_index": items}


def _rouge_entry(rng: random.Random, n: int) -> dict:
    items = {}
    for i in range(n):
        r = rng.random()
        items[str(i)] = {
            "rouge1_recall": r,
            "rougeL_f1": r * 0.9,
            "rougeL_recall": r * 0.8,
            "input": f"Question {i}?",
            "ground_truth": f"answer {i}",
            "generation": f"gen {i}",
        }
    return {"agg_value": 0.0, "value_by_index": items}


def _score_entry(values: list[float]) -> dict:
    return {"agg_value": 0.0, "value_by_index": {str(i): {"score": v} for i, v in enumerate(values)}}


def make_ou_tofu_eval(seed: int = 0, n_forget: int = 6, n_retain: int = 5, n_ra: int = 4, n_wf: int = 4) -> dict:
    """A TOFU_EVAL.json dict in open-unlearning's shape with random per-item values and placeholder agg_values.

    Truth ratios are computed the way open-unlearning does (exp(-mean wrong avg_loss) / (exp(-correct) + 1e-10)).
    """
    rng = random.Random(seed)
    out: dict = {}
    for prefix, n in (("forget", n_forget), ("retain", n_retain)):
        out[f"{prefix}_Q_A_Prob"] = _prob_entry(rng, n)
        out[f"{prefix}_Q_A_PARA_Prob"] = _prob_entry(rng, n)
        out[f"{prefix}_Q_A_PERT_Prob"] = _prob_entry(rng, n, k=5)
        out[f"{prefix}_Q_A_ROUGE"] = _rouge_entry(rng, n)
    for prefix, n in (("ra", n_ra), ("wf", n_wf)):
        out[f"{prefix}_Q_A_Prob"] = _prob_entry(rng, n)
        out[f"{prefix}_Q_A_PERT_Prob"] = _prob_entry(rng, n, k=3)
        out[f"{prefix}_Q_A_ROUGE"] = _rouge_entry(rng, n)
    for prefix, correct_key, name in (
        ("forget", "forget_Q_A_PARA_Prob", "forget_truth_ratio"),
        ("retain", "retain_Q_A_PARA_Prob", "retain_Truth_Ratio"),
        ("ra", "ra_Q_A_Prob", "ra_Truth_Ratio"),
        ("wf", "wf_Q_A_Prob", "wf_Truth_Ratio"),
    ):
        correct = out[correct_key]["value_by_index"]
        wrong = out[f"{prefix}_Q_A_PERT_Prob"]["value_by_index"]
        trs = [
            math.exp(-sum(wrong[i]["avg_loss"]) / len(wrong[i]["avg_loss"])) / (math.exp(-correct[i]["avg_loss"]) + 1e-10)
            for i in correct
        ]
        out[name] = _score_entry(trs)
    for prefix in ("ra", "wf"):
        c = out[f"{prefix}_Q_A_Prob"]["value_by_index"]
        w = out[f"{prefix}_Q_A_PERT_Prob"]["value_by_index"]
        out[f"{prefix}_Q_A_Prob_normalised"] = {
            "agg_value": 0.0,
            "value_by_index": {i: {"prob": c[i]["prob"] / (c[i]["prob"] + sum(w[i]["prob"]) + 1e-10)} for i in c},
        }
    forget_scores = [rng.uniform(0.5, 2.0) for _ in range(n_forget)]
    holdout_scores = [rng.uniform(1.0, 3.0) for _ in range(n_forget)]
    out["mia_min_k"] = {
        "forget": _score_entry(forget_scores),
        "holdout": _score_entry(holdout_scores),
        "auc": 0.0,
        "agg_value": 0.0,
    }
    out["forget_quality"] = {"agg_value": None}
    out["model_utility"] = {"agg_value": 0.0}
    out["privleak"] = {"agg_value": 0.0}
    return out


@pytest.fixture
def ou_eval() -> dict:
    """An unlearned model's TOFU_EVAL.json in open-unlearning's shape."""
    return make_ou_tofu_eval(seed=1)


@pytest.fixture
def ou_retain_eval() -> dict:
    """A retain model's TOFU_EVAL.json in open-unlearning's shape (same item counts, other values)."""
    return make_ou_tofu_eval(seed=2)


def _rows(n: int, k: int, offset: int = 0, paraphrase: bool = True) -> list[dict]:
    colours = ["red", "blue", "green", "amber", "violet", "grey", "white"]
    out = []
    for i in range(n):
        j = i + offset
        row = {
            "question": f"What colour is the book of author {j}?",
            "answer": f"The book of author {j} is {colours[j % 7]}.",
            "perturbed_answer": [f"The book of author {j} is {colours[(j + d) % 7]}." for d in range(1, k + 1)],
        }
        if paraphrase:
            row["paraphrased_answer"] = f"Author {j} wrote a {colours[j % 7]} book."
        out.append(row)
    return out


def write_mini_tofu(folder, n: int = 5, holdout: bool = True, plain_forget: bool = False):
    """A few-row folder in TOFU's split names and schema (JSON Lines), written by the tests."""
    import json

    folder.mkdir(parents=True, exist_ok=True)
    splits = {
        "forget10_perturbed": _rows(n, 5, paraphrase=not plain_forget),
        "retain_perturbed": _rows(n, 5, offset=100),
        "real_authors_perturbed": _rows(n, 3, offset=200, paraphrase=False),
        "world_facts_perturbed": _rows(n, 3, offset=300, paraphrase=False),
    }
    if plain_forget:
        for r in splits["forget10_perturbed"]:
            del r["perturbed_answer"]
    if holdout:
        splits["holdout10"] = [{"question": r["question"], "answer": r["answer"]} for r in _rows(n, 1, offset=400)]
    for name, rows in splits.items():
        (folder / f"{name}.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def build_random_tiny_model(out_dir, texts: list[str], seed: int = 0):
    """An untrained 2-layer LlamaForCausalLM and a small byte-level BPE tokenizer, saved with save_pretrained."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<pad>", "<s>", "</s>"], show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=len(fast), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=2, max_position_embeddings=512, bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id,
    )
    model = LlamaForCausalLM(cfg)
    model.save_pretrained(out_dir)
    fast.save_pretrained(out_dir)
    return out_dir


@pytest.fixture(scope="session")
def mini_tofu(tmp_path_factory):
    return write_mini_tofu(tmp_path_factory.mktemp("mini_tofu"))


@pytest.fixture(scope="session")
def random_tiny_model(tmp_path_factory, mini_tofu):
    import json

    texts = []
    for f in sorted(mini_tofu.iterdir()):
        for line in f.read_text().splitlines():
            row = json.loads(line)
            texts += [row["question"], row["answer"], *row.get("perturbed_answer", [])]
    return build_random_tiny_model(tmp_path_factory.mktemp("tiny_model"), ["Question: Answer:"] + texts)


@pytest.fixture(scope="session")
def make_ou_eval():
    """The builder of open-unlearning-shaped TOFU_EVAL.json dicts (see :func:`make_ou_tofu_eval`)."""
    return make_ou_tofu_eval


@pytest.fixture(scope="session")
def make_mini_tofu():
    """The writer of few-row TOFU-style folders (see :func:`write_mini_tofu`)."""
    return write_mini_tofu


def _assert_full_sequence_scores(model, got: list[list], prompts: list[list[int]], answers: list[list[list[int]]],
                                 pad_id: int, batch_size: int = 5) -> None:
    """``got[i][v]`` (a fast path's scores) equal full-sequence scores of ``prompts[i] + answers[i][v]`` to 1e-5."""
    from baldro.evaluation.scoring import score_sequences

    ids = [p + a for p, row in zip(prompts, answers) for a in row]
    labels = [[-100] * len(p) + a for p, row in zip(prompts, answers) for a in row]
    ref = score_sequences(model, ids, labels, pad_id, batch_size=batch_size, progress=False)
    flat = [s for row in got for s in row]
    assert [s.n_tokens for s in flat] == [len(a) for row in answers for a in row]
    for a, b in zip(flat, ref):
        assert a.avg_loss == pytest.approx(b.avg_loss, rel=1e-5)
        assert a.prob == pytest.approx(b.prob, rel=1e-5)
        np.testing.assert_allclose(a.token_logprobs, b.token_logprobs, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(a.mu, b.mu, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(a.sigma, b.sigma, rtol=1e-3, atol=1e-4)  # E[x²] − μ²: cancellation
        assert a.hits.tolist() == b.hits.tolist()


@pytest.fixture
def assert_full_sequence_scores() -> Callable[..., None]:
    """The check of :func:`_assert_full_sequence_scores` (prefix-cache and packed-tree scoring tests)."""
    return _assert_full_sequence_scores


@pytest.fixture(scope="session")
def memorised_tiny_model(tmp_path_factory, random_tiny_model, mini_tofu):
    """The random tiny model trained until it reproduces the forget, retain and real-authors answers of ``mini_tofu``
    (prompt format of the evaluation, labels on answer + EOS); the world-facts answers stay unseen."""
    import json

    from tests.memorising import memorise
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(random_tiny_model)
    model = AutoModelForCausalLM.from_pretrained(random_tiny_model)
    pairs = []
    for name in ("forget10_perturbed", "retain_perturbed", "real_authors_perturbed"):
        for line in (mini_tofu / f"{name}.json").read_text().splitlines():
            row = json.loads(line)
            pairs.append((row["question"], row["answer"]))
    memorise(model, tok, pairs, 300)
    out = tmp_path_factory.mktemp("memorised_tiny_model")
    model.eval().save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture
def seen_drafts(monkeypatch) -> list:
    """The ``drafts`` argument of every ``generate_greedy`` call a TOFU evaluation makes, in order (the call runs)."""
    import baldro.evaluation.tofu_scorer as tofu_scorer

    seen: list = []
    real = tofu_scorer.generate_greedy

    def spy(*args, **kwargs):
        seen.append(kwargs.get("drafts"))
        return real(*args, **kwargs)

    monkeypatch.setattr(tofu_scorer, "generate_greedy", spy)
    return seen
