"""Each metric formula on hand-computed toy values; ROUGE/KS/hmean/AUC are checked against their libraries."""

from __future__ import annotations

import math

import numpy as np
import pytest
from rouge_score import rouge_scorer
from scipy import stats
from sklearn.metrics import roc_auc_score

from baldro.evaluation import metrics


def test_truth_ratio_from_known_losses():
    # correct avg_loss 1.0; wrong avg_losses 2.0 and 4.0 -> P_wrong = exp(-3), P_correct = exp(-1)
    tr = metrics.truth_ratios([1.0], [[2.0, 4.0]])
    assert tr[0] == pytest.approx(math.exp(-3) / (math.exp(-1) + 1e-10), rel=1e-12)
    assert tr[0] == pytest.approx(math.exp(-2), rel=1e-8)


def test_truth_ratio_aggregates():
    tr = [0.5, 2.0, 1.0]
    # closer_to_1_better: min(0.5, 2) = 0.5, min(2, 0.5) = 0.5, min(1, 1) = 1
    assert metrics.tr_closer_to_1_better(tr) == pytest.approx((0.5 + 0.5 + 1.0) / 3, rel=1e-8)
    # true_better: max(0, 1 - tr) = 0.5, 0, 0
    assert metrics.tr_true_better(tr) == pytest.approx(0.5 / 3, rel=1e-12)


def test_normalised_probability():
    out = metrics.normalised_probs([0.6, 0.2], [[0.1, 0.3], [0.2, 0.0]])
    assert out[0] == pytest.approx(0.6 / 1.0, rel=1e-9)
    assert out[1] == pytest.approx(0.2 / 0.4, rel=1e-9)


def test_mean_of_items_collapses_lists_and_drops_nulls():
    assert metrics.mean_of_items([0.2, None, 0.4]) == pytest.approx(0.3)
    assert metrics.mean_of_items([[0.1, 0.3], [0.5, 0.7]]) == pytest.approx(0.4)
    assert metrics.mean_of_items([None, None]) is None


def test_forget_quality_is_scipy_ks_pvalue():
    a = [0.1, 0.4, 0.35, 0.8, 0.9]
    b = [0.2, 0.25, 0.5, 0.6, 0.95, 0.3]
    assert metrics.forget_quality(a, b) == stats.ks_2samp(a, b).pvalue
    assert metrics.forget_quality(a, a) == pytest.approx(1.0)


def test_model_utility_hmean_and_zero_collapses():
    assert metrics.model_utility([0.5, 0.25]) == pytest.approx(2 / (2 + 4))
    assert metrics.model_utility([0.5, 0.0, 0.9]) == 0.0
    vals = [0.3, 0.7, 0.9]
    assert metrics.model_utility(vals) == stats.hmean(vals)


def test_rouge_comes_from_rouge_score():
    gen, gt = "The author was born in Paris in 1960", "The author was born in Paris"
    ref = rouge_scorer.RougeScorer(["rouge1", "rougeL"], use_stemmer=True).score(gt, gen)
    out = metrics.rouge_scores(gen, gt)
    assert out == {
        "rouge1_recall": ref["rouge1"].recall,
        "rougeL_f1": ref["rougeL"].fmeasure,
        "rougeL_recall": ref["rougeL"].recall,
    }
    assert out["rougeL_recall"] == 1.0 and out["rougeL_f1"] < 1.0


def test_min_k_score_known_values():
    lp = [-0.1, -3.0, -0.5, -2.0, -1.0]  # k = 0.4 -> lowest 2 of 5: -3, -2
    assert metrics.min_k_score(lp) == pytest.approx(2.5)
    assert metrics.min_k_score([-0.7]) == pytest.approx(0.7)  # at least one token
    assert metrics.min_k_score([]) == 0.0


def test_mia_auc_labels_forget_zero():
    # forget (members) low loss, holdout high loss -> AUC 1 with labels 0 = forget
    assert metrics.mia_auc([0.1, 0.2], [0.8, 0.9]) == 1.0
    f, h = [0.3, 0.9, 0.2], [0.5, 0.1]
    assert metrics.mia_auc(f, h) == roc_auc_score([0, 0, 0, 1, 1], f + h)


def test_privleak_formula():
    assert metrics.privleak(0.5) == pytest.approx(0.0, abs=1e-6)
    # AUC 1 (fully leaked) vs retain 0.5: ((0) - 0.5) / 0.5 * 100 = -100
    assert metrics.privleak(1.0, 0.5) == pytest.approx(-100.0, rel=1e-8)
    assert metrics.privleak(0.2, 0.4) == pytest.approx((0.8 - 0.6) / 0.6 * 100, rel=1e-8)


def test_exact_memorization_and_extraction_strength():
    assert metrics.exact_memorization([True, False, True, True]) == 0.75
    assert metrics.exact_memorization([]) is None
    assert metrics.extraction_strength([True, True, True, True]) == 1.0
    assert metrics.extraction_strength([False, True, True, True]) == 0.75  # k = 1
    assert metrics.extraction_strength([True, False, False, True]) == 0.25  # k = 3
    assert metrics.extraction_strength([True, True, False]) == pytest.approx(1 / 3)  # no suffix: k = n - 1
    assert metrics.extraction_strength([]) == 0.0


def test_aggregate_to_1d_matches_numpy():
    x = np.array([[1.0, 2.0], [3.0, 5.0]])
    assert metrics.aggregate_to_1d(x).tolist() == [1.5, 4.0]


def test_min_k_plus_plus_known_values():
    lp, mu, sigma = [-1.0, -3.0, -2.0, -0.5, -4.0], [-2.0] * 5, [4.0] * 5
    # z = (lp - mu) / 2 = 0.5, -0.5, 0, 0.75, -1; lowest 2: -1, -0.5
    assert metrics.min_k_plus_plus_score(lp, mu, sigma) == pytest.approx(0.75)
    assert metrics.min_k_plus_plus_score([-1.0], [-1.0], [0.0]) == pytest.approx(0.0)  # sigma clamped, no nan
    assert metrics.min_k_plus_plus_score([], [], []) == 0.0


def test_zlib_score():
    import zlib

    text = "The author was born in Paris."
    assert metrics.zlib_score(2.0, text) == 2.0 / len(zlib.compress(text.encode()))
