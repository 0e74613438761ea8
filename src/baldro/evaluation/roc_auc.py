"""Binary ROC AUC with the floating-point result of scikit-learn's ``roc_auc_score`` (unweighted), numpy only.

open-unlearning scores its MIA attacks with ``sklearn.metrics.roc_auc_score``; importing scikit-learn costs about
1 s of CPU (it pulls in pandas and most of scipy), which ``baldro eval summarize`` should not pay. The value is a
float, so "the same AUC" means the same rounding, not only the same mathematics; this module therefore builds the
curve from the same points and integrates it with the same operations as scikit-learn's
``roc_curve(drop_intermediate=True)`` followed by ``auc`` (trapezoidal rule):

1. thresholds = the distinct scores, highest first; at each one the counts TP (positives with score ≥ it) and
   FP (negatives with score ≥ it) — exact integers, so the order of ties cannot matter;
2. an interior point is dropped when it is collinear with its neighbours in both counts (second differences 0);
3. (0, 0) is prepended and the rates are TPR = TP / P, FPR = FP / N (one correctly rounded division each);
4. AUC = Σ (FPR_{i+1} − FPR_i) · (TPR_{i+1} + TPR_i) / 2.0, summed by ``numpy.sum`` (pairwise summation).

A Mann-Whitney U statistic gives the same number in exact arithmetic but can differ in the last bit.
``tests/evaluation/test_roc_auc.py`` compares the result with scikit-learn's bit for bit on random inputs with ties.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def roc_auc(negative_scores: Sequence[float], positive_scores: Sequence[float]) -> float:
    """Area under the ROC curve of a score where higher means "positive" (label 1), as scikit-learn rounds it.

    NaN when one class has no sample (scikit-learn warns and returns NaN); ValueError for no sample at all or a
    non-finite score (scikit-learn rejects those too).
    """
    neg = np.asarray(negative_scores, dtype=np.float64).reshape(-1)
    pos = np.asarray(positive_scores, dtype=np.float64).reshape(-1)
    if neg.size + pos.size == 0:
        raise ValueError("ROC AUC of no scores: both the negative and the positive sample are empty")
    if not (np.isfinite(neg).all() and np.isfinite(pos).all()):
        raise ValueError("ROC AUC: a score is NaN or infinite; every score must be a finite number")
    if neg.size == 0 or pos.size == 0:
        return float("nan")
    scores = np.concatenate([neg, pos])
    is_pos = np.concatenate([np.zeros(neg.size, dtype=np.int64), np.ones(pos.size, dtype=np.int64)])
    order = np.argsort(-scores, kind="stable")
    scores, is_pos = scores[order], is_pos[order]
    # last position of each run of equal scores: everything up to it scores >= that threshold
    ends = np.append(np.flatnonzero(scores[1:] != scores[:-1]), scores.size - 1)
    tp = np.cumsum(is_pos)[ends]
    fp = ends + 1 - tp
    if tp.size > 2:
        keep = np.ones(tp.size, dtype=bool)
        keep[1:-1] = (np.diff(fp, 2) != 0) | (np.diff(tp, 2) != 0)
        tp, fp = tp[keep], fp[keep]
    tp = np.concatenate([[0.0], tp.astype(np.float64)])
    fp = np.concatenate([[0.0], fp.astype(np.float64)])
    tpr, fpr = tp / tp[-1], fp / fp[-1]
    return float(np.sum((fpr[1:] - fpr[:-1]) * (tpr[1:] + tpr[:-1]) / 2.0))
