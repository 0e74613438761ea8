"""Matched-utility statistics on hand-made trajectories: best FQ under the utility bar, bootstrap mean, paired tests."""

from __future__ import annotations

import math

import pytest

from baldro.errors import DataError
from baldro.reports.matched_utility import bootstrap_mean, compare, matched_fq, paired_test


def _row(step, fq, mu):
    return {"step": step, "forget_quality": fq, "model_utility": mu}


TRAJ = [_row(0, 1e-5, 0.8), _row(5, 0.01, 0.75), _row(10, 0.2, 0.70), _row(15, 0.5, 0.6)]


def test_best_fq_under_the_utility_bar_and_the_final_fq():
    m = matched_fq(TRAJ, target_mu=0.8)  # bar 0.9 * 0.8 = 0.72: steps 0 and 5 qualify
    assert (m.best_fq, m.step, m.reached) == (0.01, 5, True)
    assert (m.final_fq, m.final_mu) == (0.5, 0.6) and m.threshold == pytest.approx(0.72)
    loose = matched_fq(TRAJ, target_mu=0.8, mu_keep=0.75)  # bar 0.6: every step qualifies
    assert (loose.best_fq, loose.step) == (0.5, 15)
    at_bar = matched_fq(TRAJ, target_mu=0.8, mu_keep=0.5)  # MU exactly at the bar (0.4 ≤ 0.6) counts
    assert at_bar.step == 15


def test_ties_take_the_earliest_step_and_input_order_does_not_matter():
    rows = [_row(10, 0.01, 0.9), _row(0, 1e-4, 1.0), _row(5, 0.01, 0.95), _row(20, 0.3, 0.1)]
    m = matched_fq(rows, target_mu=1.0)
    assert (m.best_fq, m.step, m.final_fq) == (0.01, 5, 0.3)


def test_a_run_that_never_keeps_the_utility():
    rows = [_row(5, 0.2, 0.5), _row(10, 0.4, 0.3)]  # step 0 not logged, utility already below the bar
    m = matched_fq(rows, target_mu=0.8)
    assert not m.reached and m.step is None and math.isnan(m.best_fq)
    assert m.final_fq == 0.4


def test_rows_without_fq_are_ignored_and_none_at_all_is_an_error():
    m = matched_fq([_row(0, None, 0.8), _row(5, 0.3, 0.8)], target_mu=0.8)
    assert m.step == 5
    with pytest.raises(DataError, match="retain_logs"):
        matched_fq([_row(0, None, 0.8)], target_mu=0.8)
    with pytest.raises(DataError, match="mu_keep"):
        matched_fq(TRAJ, target_mu=0.8, mu_keep=1.5)


def test_bootstrap_mean_n1_equal_values_missing_and_seeded():
    one = bootstrap_mean([0.3])
    assert one.mean == 0.3 and math.isnan(one.low) and "n = 1" in one.note
    same = bootstrap_mean([0.2, 0.2, 0.2])
    assert same.low == same.high == same.mean == pytest.approx(0.2) and same.note == "all values equal"
    iv = bootstrap_mean([1.0, 2.0, 3.0, 4.0, 5.0, math.nan])
    assert iv.n == 5 and iv.n_missing == 1 and iv.mean == 3.0
    assert 1.0 <= iv.low < 3.0 < iv.high <= 5.0
    assert bootstrap_mean([1.0, 2.0, 3.0, 4.0, 5.0]) == bootstrap_mean([1.0, 2.0, 3.0, 4.0, 5.0])  # seeded
    wide = bootstrap_mean([1.0, 2.0, 3.0, 4.0, 50.0])
    assert wide.high - wide.low > iv.high - iv.low
    empty = bootstrap_mean([math.nan])
    assert empty.n == 0 and math.isnan(empty.mean)


def test_paired_sign_test_with_ties_hand_computed():
    d = [0.125, 0.25, -0.0625, 0.25, 0.375, 0.0]  # exact in binary: 4 up, 1 down, 1 tie
    p = paired_test({s: 0.5 + x for s, x in enumerate(d)}, {s: 0.5 for s in range(6)})
    assert (p.n_positive, p.n_negative, p.n_ties) == (4, 1, 1)
    assert p.sign_p == pytest.approx(12 / 32)  # P(X<=1)+P(X>=4), X ~ Bin(5, 1/2)
    # |d| ranks 2, 3.5, 1, 3.5, 5: W- = 1; subsets of {1, 2, 3.5, 3.5, 5} with sum <= 1: {}, {1} -> 2 * 2/32
    assert p.wilcoxon_p == pytest.approx(4 / 32)
    assert p.test == "sign" and p.p_value == p.sign_p and "5 non-tied pairs" in p.note
    assert p.mean_difference == pytest.approx(sum(d) / 6) and p.median_difference == pytest.approx(0.1875)


def test_paired_wilcoxon_from_six_pairs_hand_computed():
    d = [1, 2, -3, 4, 5, 6]
    p = paired_test({s: x / 8 for s, x in enumerate(d)}, {s: 0.0 for s in range(6)})
    assert p.test == "wilcoxon"
    assert p.wilcoxon_p == pytest.approx(10 / 64)  # W- = 3: {}, {1}, {2}, {3}, {1,2} -> 5/64, two-sided
    assert p.sign_p == pytest.approx(14 / 64)


def test_paired_all_ties_unshared_and_missing_seeds():
    p = paired_test({1: 0.3, 2: 0.4, 3: 0.5}, {1: 0.3, 2: 0.4, 4: 0.9})
    assert p.seeds == [1, 2] and p.n_ties == 2 and p.sign_p == 1.0 and math.isnan(p.wilcoxon_p)
    assert p.test == "sign" and p.p_value == 1.0 and "Wilcoxon undefined" in p.note
    q = paired_test({1: math.nan, 2: 0.5}, {1: 0.1, 2: 0.1})
    assert q.seeds == [2] and q.n_positive == 1 and q.sign_p == 1.0 and q.wilcoxon_p == 1.0  # one pair: 2 * 1/2
    none = paired_test({1: 0.1}, {2: 0.1})
    assert none.seeds == [] and "no shared seed" in none.note


def test_compare_tables_methods_against_their_base():
    def traj(fq_mid):
        return [_row(0, 1e-4, 0.8), _row(5, fq_mid, 0.78), _row(10, 0.9, 0.1)]

    runs = {
        "npo": {s: traj(0.01 * (s + 1)) for s in range(3)},
        "npo+dv": {s: traj(0.02 * (s + 1)) for s in range(3)},
    }
    table = compare(runs, target_mu=0.8, bases={"npo+dv": "npo"})
    assert [table["npo"].per_seed[s].best_fq for s in range(3)] == [0.01, 0.02, 0.03]
    assert table["npo"].matched.mean == pytest.approx(0.02) and table["npo"].final.mean == pytest.approx(0.9)
    vs = table["npo+dv"].vs_base
    assert table["npo+dv"].base == "npo" and vs.n_positive == 3 and vs.sign_p == pytest.approx(0.25)
    assert table["npo"].vs_base is None
    with pytest.raises(DataError, match="'simnpo'"):
        compare(runs, target_mu=0.8, bases={"npo+dv": "simnpo"})
