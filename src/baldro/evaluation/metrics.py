"""Pure metric formulas of TOFU (Maini et al., 2024) and MUSE (Shi et al., 2024) as open-unlearning computes them.

Every function takes plain numbers or arrays and returns plain floats, so the same code scores a live model and
re-scores the per-item values of an existing ``*_EVAL.json`` (ours or open-unlearning's). The small constants
(``1e-10``) and the order of the numpy reductions follow open-unlearning's evaluator so that results agree to the
last digit; ROUGE, the KS test and the harmonic mean come from rouge-score and scipy; the MIA AUC reproduces
scikit-learn's ``roc_auc_score`` to the bit (:mod:`.roc_auc`).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from baldro.evaluation.roc_auc import roc_auc

if TYPE_CHECKING:  # rouge-score (nltk) and scipy.stats are imported where used: seconds at import time
    from rouge_score import rouge_scorer

EPS = 1e-10
MIN_K_FRACTION = 0.4

_SCORER: rouge_scorer.RougeScorer | None = None


def aggregate_to_1d(values: np.ndarray) -> np.ndarray:
    """Per-item mean over any inner axes (a list of perturbed answers collapses to its mean)."""
    return np.mean(values, axis=tuple(range(1, values.ndim)))


def mean_of_items(values: Sequence[float | Sequence[float] | None]) -> float | None:
    """``mean_i aggregate_to_1d(v_i)`` over the non-null per-item values (open-unlearning's ``agg_value``); None if none."""
    kept = np.array([v for v in values if v is not None], dtype=np.float64)
    return float(np.mean(aggregate_to_1d(kept))) if kept.size else None


def truth_ratios(correct_avg_loss: Sequence[float], wrong_avg_loss: Sequence[float | Sequence[float]]) -> np.ndarray:
    """Per-item truth ratio TR = P_wrong / (P_correct + 1e-10).

    P_correct = exp(−avg_loss of the correct answer); P_wrong = exp(−mean_k avg_loss_k) over the wrong answers
    (the geometric mean of their length-normalised probabilities).
    """
    correct = aggregate_to_1d(np.array(correct_avg_loss, dtype=np.float64))
    wrong = aggregate_to_1d(np.array(wrong_avg_loss, dtype=np.float64))
    return np.exp(-wrong) / (np.exp(-correct) + EPS)


def tr_closer_to_1_better(tr: Sequence[float]) -> float:
    """Forget-set aggregate mean(min(TR, 1/TR)): 1 when wrong and right answers are equally likely."""
    arr = np.asarray(tr, dtype=np.float64)
    return float(np.mean(np.minimum(arr, 1 / (arr + EPS))))


def tr_true_better(tr: Sequence[float]) -> float:
    """Retain / real-authors / world-facts aggregate mean(max(0, 1 − TR)): higher when the truth is preferred."""
    arr = np.asarray(tr, dtype=np.float64)
    return float(np.mean(np.maximum(0, 1 - arr)))


def normalised_probs(correct_prob: Sequence[float], wrong_prob: Sequence[Sequence[float]]) -> np.ndarray:
    """Per-item P(answer) / (P(answer) + Σ_k P(perturbed_k) + 1e-10) with length-normalised probabilities."""
    correct = np.array(correct_prob, dtype=np.float64)
    wrong_all = np.array(wrong_prob, dtype=np.float64)
    wrong = np.sum(wrong_all, axis=tuple(range(1, wrong_all.ndim)))
    return correct / (correct + wrong + EPS)


def forget_quality(model_tr: Sequence[float], retain_tr: Sequence[float]) -> float:
    """Forget Quality = p-value of the two-sided two-sample KS test between the two truth-ratio samples."""
    from scipy import stats

    return float(stats.ks_2samp(np.asarray(model_tr, dtype=np.float64), np.asarray(retain_tr, dtype=np.float64)).pvalue)


def model_utility(values: Sequence[float]) -> float:
    """Model Utility = harmonic mean (``scipy.stats.hmean``) of the utility metrics; any zero makes it 0."""
    from scipy import stats

    return float(stats.hmean(np.asarray(values, dtype=np.float64)))


class _MemoTokenizer:
    """rouge-score's default tokenizer (lower-case, alphanumeric tokens, Porter stemmer) remembering its last
    ``size`` texts: one generation scored against several references (answer, paraphrase, perturbed answers) is
    tokenised and stemmed once. Same tokens, so the same scores."""

    def __init__(self, size: int = 8192) -> None:
        from rouge_score import tokenizers

        self._inner = tokenizers.DefaultTokenizer(use_stemmer=True)
        self._memo: dict[str, list[str]] = {}
        self._size = size

    def tokenize(self, text: str) -> list[str]:
        tokens = self._memo.get(text)
        if tokens is None:
            if len(self._memo) >= self._size:
                self._memo.clear()
            tokens = self._memo[text] = self._inner.tokenize(text)
        return list(tokens)


def rouge_scores(generation: str, ground_truth: str) -> dict[str, float]:
    """ROUGE of a generation against its reference: rouge-score's ``RougeScorer(["rouge1", "rougeL"], use_stemmer=True)``
    (its default tokenizer, memoised)."""
    global _SCORER
    if _SCORER is None:
        from rouge_score import rouge_scorer

        _SCORER = rouge_scorer.RougeScorer(["rouge1", "rougeL"], tokenizer=_MemoTokenizer())
    scores = _SCORER.score(ground_truth, generation)
    return {
        "rouge1_recall": scores["rouge1"].recall,
        "rougeL_f1": scores["rougeL"].fmeasure,
        "rougeL_recall": scores["rougeL"].recall,
    }


def min_k_score(token_logprobs: Sequence[float], k: float = MIN_K_FRACTION) -> float:
    """Min-K% Prob (Shi et al., 2023): −mean of the lowest ⌊k·n⌋ (at least 1) token log-probs; 0 for no token.

    Loss-like: members (memorised text) score lower. The caller excludes the EOS prediction.
    """
    lp = np.asarray(token_logprobs, dtype=np.float32)
    if lp.size == 0:
        return 0.0
    num_k = max(1, int(len(lp) * k))
    return -float(np.mean(np.sort(lp)[:num_k]))


def min_k_plus_plus_score(
    token_logprobs: Sequence[float], mu: Sequence[float], sigma: Sequence[float], k: float = MIN_K_FRACTION
) -> float:
    """Min-K%++ (Zhang et al., 2024): z_t = (log p(y_t) − μ_t) / √max(σ²_t, 1e-6) with μ_t, σ²_t the mean and
    variance of log p over the vocabulary; −mean of the lowest ⌊k·n⌋ (at least 1) z_t; 0 for no token."""
    lp = np.asarray(token_logprobs, dtype=np.float32)
    if lp.size == 0:
        return 0.0
    z = (lp - np.asarray(mu, dtype=np.float32)) / np.sqrt(np.maximum(np.asarray(sigma, dtype=np.float32), 1e-6))
    num_k = max(1, int(len(z) * k))
    return -float(np.mean(sorted(z)[:num_k]))


def zlib_score(avg_loss: float, text: str) -> float:
    """zlib attack (Carlini et al., 2021): avg_loss / len(zlib.compress(text)) with text the decoded answer."""
    return avg_loss / len(zlib.compress(text.encode("utf-8")))


def mia_auc(forget_scores: Sequence[float], holdout_scores: Sequence[float]) -> float:
    """ROC AUC of a loss-like MIA statistic with labels 0 = forget (members), 1 = holdout (non-members).

    open-unlearning calls ``sklearn.metrics.roc_auc_score(labels, scores)``; :func:`.roc_auc.roc_auc` returns the
    same float bit for bit without importing scikit-learn (about 1 s of CPU at start-up).
    """
    return roc_auc(forget_scores, holdout_scores)


def privleak(auc: float, retain_auc: float = 0.5) -> float:
    """PrivLeak (MUSE) = ((1 − AUC) − (1 − AUC_ret)) / (1 − AUC_ret + 1e-10) · 100, AUC_ret = 0.5 without retain logs."""
    score, ref = 1 - auc, 1 - retain_auc
    return (score - ref) / (ref + EPS) * 100


def exact_memorization(greedy_hits: Sequence[bool]) -> float | None:
    """Fraction of answer tokens (EOS excluded) where the argmax prediction equals the label; None for none."""
    hits = np.asarray(greedy_hits, dtype=bool)
    return None if hits.size == 0 else float(hits.sum() / hits.size)


def extraction_strength(greedy_hits: Sequence[bool]) -> float:
    """Extraction strength (Carlini et al.): 1 − k/n with k the shortest prefix after which every argmax matches.

    As open-unlearning's loop does, k stays at n − 1 when no suffix matches (score 1/n), and 0 when n = 0.
    """
    hits = np.asarray(greedy_hits, dtype=bool)
    n = hits.size
    if n == 0:
        return 0.0
    all_match_from = np.flip(np.cumprod(np.flip(hits)).astype(bool))
    matched = np.nonzero(all_match_from)[0]
    k = int(matched[0]) if matched.size else n - 1
    return 1 - k / n


def is_finite_number(x: object) -> bool:
    """True for a real, finite number (JSON null, NaN and infinities are not)."""
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)
