"""TOFU and MUSE evaluation of a model stored in bf16 (``baldro eval ... --dtype bfloat16``, as open-unlearning
evaluates its bf16 models) against the same weight values in float32, on the memorised tiny model.

Scores: each answer token's NLL = logsumexp(z) − z_y changes by at most 2·max|Δz| when the logits z change by Δz
(|∂NLL/∂z|₁ = 2(1 − p_y) ≤ 2; less the more confident the token), and so does a per-item average. A bf16 model
rounds every activation (U relative): the logits of this model (|z| ≤ ZMAX) move by about U·ZMAX, so the bound is
2·(2·U·ZMAX) = 0.5 nats, a margin of 2 for the rounding compounding through the layers; observed: 0.10 nats (TOFU
answers), 0.03 (MUSE MIA scores). A masking or label-shift bug moves NLLs by nats. Derived per-item values follow:
truth ratio (|Δ log TR| ≤ |Δ para| + |Δ pert|), MIA loss score (a mean NLL). Generations: a memorised answer's
greedy steps win by gaps of several nats, so at least ¾ of them must be identical (observed: all; the exact
condition is tested in :mod:`tests.bf16.test_generation`), and identical generations give identical ROUGE.
"""

from __future__ import annotations

import json
import math

import pytest

from baldro.evaluation.muse import evaluate_muse
from baldro.evaluation.tofu import evaluate_tofu

from .conftest import EVAL_ITEMS
from .precision import U

ZMAX = 32.0  # bound on |logit| of the memorised tiny model (checked in the test)
NLL_TOL = 2 * 2 * U * ZMAX


def _items(ev: dict, key: str) -> dict:
    return ev[key]["value_by_index"]


def _max_logit(model_dir) -> float:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    ids = torch.arange(3, min(200, model.config.vocab_size))[None]
    with torch.no_grad():
        return float(model(input_ids=ids).logits.abs().max())


@pytest.fixture(scope="module")
def tofu_pair(memorised_model, synth_dir):
    kw = {"max_items": EVAL_ITEMS, "max_new_tokens": 12, "progress": False, "return_eval": True}
    _, f32 = evaluate_tofu(str(memorised_model), str(synth_dir), dtype="float32", **kw)
    _, bf16 = evaluate_tofu(str(memorised_model), str(synth_dir), dtype="bfloat16", **kw)
    return f32, bf16


def test_tofu_scores_in_bf16_within_the_logit_noise(tofu_pair, memorised_model):
    f32, bf16 = tofu_pair
    assert (f32["model_dtype"], bf16["model_dtype"]) == ("float32", "bfloat16")
    assert _max_logit(memorised_model) <= ZMAX
    worst = 0.0
    for key in f32:
        if not key.endswith("_Prob") or key.endswith("_normalised"):
            continue
        for i, item in _items(f32, key).items():
            other = _items(bf16, key)[i]
            losses = item["avg_loss"] if isinstance(item["avg_loss"], list) else [item["avg_loss"]]
            others = other["avg_loss"] if isinstance(other["avg_loss"], list) else [other["avg_loss"]]
            for a, b in zip(losses, others, strict=True):
                worst = max(worst, abs(a - b))
    assert 0 < worst <= NLL_TOL, f"avg_loss moved by {worst:.3g} nats (bound {NLL_TOL:.3g})"
    for key in ("forget_truth_ratio", "retain_Truth_Ratio", "ra_Truth_Ratio", "wf_Truth_Ratio"):
        for i, item in _items(f32, key).items():
            assert abs(math.log(item["score"]) - math.log(_items(bf16, key)[i]["score"])) <= 2 * NLL_TOL, key
    for side in ("forget", "holdout"):
        for i, item in f32["mia_loss"][side]["value_by_index"].items():
            assert abs(item["score"] - bf16["mia_loss"][side]["value_by_index"][i]["score"]) <= NLL_TOL


def test_tofu_generations_in_bf16_equal_float32(tofu_pair):
    f32, bf16 = tofu_pair
    same = total = 0
    for key in ("forget_Q_A_ROUGE", "retain_Q_A_ROUGE", "ra_Q_A_ROUGE", "wf_Q_A_ROUGE"):
        for i, item in _items(f32, key).items():
            other = _items(bf16, key)[i]
            total += 1
            if item["generation"] == other["generation"]:
                same += 1
                assert item["rougeL_recall"] == other["rougeL_recall"] and item["rouge1_recall"] == other["rouge1_recall"]
    assert total == 4 * EVAL_ITEMS and same >= 0.75 * total


def _write_muse(folder, synth_dir) -> None:
    rows = [json.loads(line) for line in (synth_dir / "forget10_perturbed.json").read_text().splitlines()]
    qa = [{"question": r["question"], "answer": r["answer"]} for r in rows[:EVAL_ITEMS]]
    for rel, data in {
        "knowmem/forget_qa.json": qa,
        "knowmem/forget_qa_icl.json": qa[:2],
        "verbmem/forget.json": [{"prompt": r["question"], "gt": " " + r["answer"]} for r in rows[:EVAL_ITEMS]],
        "privleak/forget.json": [{"text": r["question"] + " " + r["answer"]} for r in rows[:EVAL_ITEMS]],
        "privleak/holdout.json": [{"text": r["question"] + " " + r["answer"]} for r in rows[EVAL_ITEMS : 2 * EVAL_ITEMS]],
    }.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(json.dumps(data))


def test_muse_scores_in_bf16_within_the_logit_noise(memorised_model, synth_dir, tmp_path):
    _write_muse(tmp_path, synth_dir)
    kw = {"max_items": EVAL_ITEMS, "verbmem_max_new_tokens": 8, "knowmem_max_new_tokens": 8, "progress": False,
          "return_eval": True, "batch_size": 3}
    _, f32 = evaluate_muse(str(memorised_model), tmp_path, dtype="float32", **kw)
    _, bf16 = evaluate_muse(str(memorised_model), tmp_path, dtype="bfloat16", **kw)
    assert (f32["model_dtype"], bf16["model_dtype"]) == ("float32", "bfloat16")
    worst = 0.0
    for stat in ("mia_loss", "mia_min_k"):  # a mean NLL, a mean of the lowest token log-probabilities
        for side in ("forget", "holdout"):
            for i, item in f32[stat][side]["value_by_index"].items():
                worst = max(worst, abs(item["score"] - bf16[stat][side]["value_by_index"][i]["score"]))
    assert 0 < worst <= NLL_TOL
