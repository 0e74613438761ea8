"""The numpy ROC AUC equals scikit-learn's ``roc_auc_score`` bit for bit (open-unlearning's MIA AUC), and its limits."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from baldro.evaluation.roc_auc import roc_auc


def _sklearn(neg, pos) -> float:
    return float(roc_auc_score([0] * len(neg) + [1] * len(pos), list(neg) + list(pos)))


def test_hand_computed_values():
    assert roc_auc([0.1, 0.2], [0.8, 0.9]) == 1.0  # every positive above every negative
    assert roc_auc([0.8, 0.9], [0.1, 0.2]) == 0.0
    assert roc_auc([0.5, 0.5], [0.5]) == 0.5  # all tied: the diagonal
    # (pairs pos > neg + ties / 2) / (2 x 3): 0.4 beats both, 0.2 beats 0.1, 0.3 beats 0.1 and ties 0.3
    assert roc_auc([0.1, 0.3], [0.4, 0.2, 0.3]) == 0.75


@pytest.mark.parametrize("seed", range(6))
def test_bit_identical_to_sklearn_random_with_ties(seed):
    rng = np.random.default_rng(seed)
    for trial in range(150):
        n_neg, n_pos = rng.integers(1, 80, size=2)
        scores = rng.normal(size=n_neg + n_pos) * rng.choice([1e-4, 1.0, 3e5])
        if trial % 3 == 0:
            scores = np.round(scores, 1)  # many ties
        elif trial % 3 == 1:
            scores = rng.integers(0, 4, size=n_neg + n_pos).astype(np.float64)  # heavy ties
        neg, pos = scores[:n_neg], scores[n_neg:]
        assert roc_auc(neg, pos) == _sklearn(neg, pos)  # exact: no tolerance


def test_bit_identical_to_sklearn_at_tofu_size():
    # forget10 vs holdout10: 400 items each, loss-like scores with a shift
    rng = np.random.default_rng(7)
    for shift in (0.0, 0.05, 0.4):
        neg, pos = rng.gamma(2.0, size=400), rng.gamma(2.0, size=400) + shift
        assert roc_auc(neg, pos) == _sklearn(neg, pos)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6, allow_nan=False, width=32), min_size=1, max_size=30),
    st.lists(st.floats(-1e6, 1e6, allow_nan=False, width=32), min_size=1, max_size=30),
)
def test_bit_identical_to_sklearn_property(neg, pos):
    assert roc_auc(neg, pos) == _sklearn(neg, pos)


def test_one_class_is_nan_like_sklearn():
    assert math.isnan(roc_auc([0.1, 0.2], []))
    assert math.isnan(roc_auc([], [0.3]))


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="both the negative and the positive sample are empty"):
        roc_auc([], [])
    with pytest.raises(ValueError, match="NaN or infinite"):
        roc_auc([0.1, float("nan")], [0.3])
    with pytest.raises(ValueError, match="NaN or infinite"):
        roc_auc([0.1], [float("inf")])
