"""`summarize` on open-unlearning-shaped files written by the tests, against hand-computed values."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from baldro.errors import DataError
from baldro.evaluation.retain_logs import load_retain_logs
from baldro.evaluation.summary import MODEL_UTILITY_KEYS, summarize


def _vals(entry, field):
    return [v[field] for v in entry["value_by_index"].values()]


def test_probability_and_rouge_aggregates(ou_eval):
    s = summarize(ou_eval)
    assert s["forget_Q_A_Prob"] == pytest.approx(np.mean(_vals(ou_eval["forget_Q_A_Prob"], "prob")), rel=1e-12)
    pert = [np.mean(p) for p in _vals(ou_eval["forget_Q_A_PERT_Prob"], "prob")]
    assert s["forget_Q_A_PERT_Prob"] == pytest.approx(np.mean(pert), rel=1e-12)
    # TOFU reports rougeL_recall
    assert s["retain_Q_A_ROUGE"] == pytest.approx(np.mean(_vals(ou_eval["retain_Q_A_ROUGE"], "rougeL_recall")))
    muse = summarize({"forget_knowmem_ROUGE": ou_eval["retain_Q_A_ROUGE"]}, benchmark="muse")
    assert muse["forget_knowmem_ROUGE"] == pytest.approx(np.mean(_vals(ou_eval["retain_Q_A_ROUGE"], "rougeL_f1")))


def test_truth_ratio_aggregates(ou_eval):
    s = summarize(ou_eval)
    tr = np.array(_vals(ou_eval["forget_truth_ratio"], "score"))
    assert s["forget_truth_ratio"] == pytest.approx(np.mean(np.minimum(tr, 1 / tr)), rel=1e-8)
    tr_r = np.array(_vals(ou_eval["retain_Truth_Ratio"], "score"))
    assert s["retain_Truth_Ratio"] == pytest.approx(np.mean(np.maximum(0, 1 - tr_r)), rel=1e-12)


def test_forget_quality_against_retain_fixture_file(ou_eval, ou_retain_eval, tmp_path):
    path = tmp_path / "retain" / "TOFU_EVAL.json"
    path.parent.mkdir()
    path.write_text(json.dumps(ou_retain_eval, indent=4))
    s = summarize(ou_eval, load_retain_logs(path), retain_name=str(path))
    expected = stats.ks_2samp(
        _vals(ou_eval["forget_truth_ratio"], "score"), _vals(ou_retain_eval["forget_truth_ratio"], "score")
    ).pvalue
    assert s["forget_quality"] == expected
    assert "forget_quality" not in s.get("skipped", {})


def test_forget_quality_null_without_retain_logs(ou_eval):
    s = summarize(ou_eval)
    assert s["forget_quality"] is None
    assert "--retain-logs" in s["skipped"]["forget_quality"]


def test_model_utility_is_hmean_of_the_nine(ou_eval):
    s = summarize(ou_eval)
    assert s["model_utility"] == pytest.approx(stats.hmean([s[k] for k in MODEL_UTILITY_KEYS]), rel=1e-12)
    del ou_eval["wf_Q_A_ROUGE"]
    s2 = summarize(ou_eval)
    assert "model_utility" not in s2 and "wf_Q_A_ROUGE" in s2["skipped"]["model_utility"]


def test_mia_auc_and_privleak(ou_eval, ou_retain_eval):
    f = _vals(ou_eval["mia_min_k"]["forget"], "score")
    h = _vals(ou_eval["mia_min_k"]["holdout"], "score")
    auc = roc_auc_score([0] * len(f) + [1] * len(h), f + h)
    s = summarize(ou_eval)
    assert s["mia_min_k"] == auc
    assert s["privleak"] == pytest.approx(((1 - auc) - 0.5) / 0.5 * 100, rel=1e-8)
    ou_retain_eval["mia_min_k"]["agg_value"] = 0.3
    s2 = summarize(ou_eval, ou_retain_eval)
    assert s2["privleak"] == pytest.approx(((1 - auc) - 0.7) / 0.7 * 100, rel=1e-8)


def test_retain_logs_missing_key_names_it(ou_eval, ou_retain_eval):
    del ou_retain_eval["forget_truth_ratio"]
    with pytest.raises(DataError, match="'forget_truth_ratio'"):
        summarize(ou_eval, ou_retain_eval, retain_name="ret.json")


def test_retain_logs_wrong_length_names_key(ou_eval, ou_retain_eval):
    del ou_retain_eval["forget_truth_ratio"]["value_by_index"]["0"]
    with pytest.raises(DataError, match="forget_truth_ratio.*5 per-item scores"):
        summarize(ou_eval, ou_retain_eval)


def test_retain_logs_bad_mia_value(ou_eval, ou_retain_eval):
    ou_retain_eval["mia_min_k"]["agg_value"] = "high"
    with pytest.raises(DataError, match="'mia_min_k'"):
        summarize(ou_eval, ou_retain_eval)


def test_retain_logs_not_json(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text("{not json")
    with pytest.raises(DataError, match="x.json"):
        load_retain_logs(bad)


def test_missing_inputs_are_listed_as_skipped(ou_eval):
    for key in ("forget_Q_A_PARA_Prob", "forget_truth_ratio", "mia_min_k"):
        del ou_eval[key]
    s = summarize(ou_eval)
    assert s["privleak"] is None
    assert {"forget_Q_A_PARA_Prob", "forget_truth_ratio", "forget_quality", "privleak", "mia_min_k"} <= set(s["skipped"])
    assert all(math.isfinite(s[k]) for k in MODEL_UTILITY_KEYS)


def test_malformed_eval_values_name_the_metric(ou_eval):
    ou_eval["retain_Q_A_Prob"]["value_by_index"]["1"]["prob"] = "high"
    with pytest.raises(DataError, match="'retain_Q_A_Prob'"):
        summarize(ou_eval)


def test_exact_agreement_with_open_unlearning_reductions(ou_eval, ou_retain_eval):
    """The summary equals, to the last bit, the numpy/scipy reductions open-unlearning applies to the same values."""

    def agg1d(x):
        return np.mean(x, axis=tuple(range(1, x.ndim)))

    def prob(name):
        return float(np.mean(agg1d(np.array(_vals(ou_eval[name], "prob")))))

    s = summarize(ou_eval, ou_retain_eval)
    for name in ("forget_Q_A_Prob", "forget_Q_A_PERT_Prob", "ra_Q_A_Prob_normalised"):
        assert s[name] == prob(name)
    tr = np.array(_vals(ou_eval["forget_truth_ratio"], "score"))
    assert s["forget_truth_ratio"] == float(np.mean(np.minimum(tr, 1 / (tr + 1e-10))))
    tr_r = np.array(_vals(ou_eval["retain_Truth_Ratio"], "score"))
    assert s["retain_Truth_Ratio"] == float(np.mean(np.maximum(0, 1 - tr_r)))
    rouge = np.array(_vals(ou_eval["wf_Q_A_ROUGE"], "rougeL_recall"))
    assert s["wf_Q_A_ROUGE"] == float(np.mean(agg1d(rouge)))
    assert s["model_utility"] == float(stats.hmean([s[k] for k in MODEL_UTILITY_KEYS]))
    ret_tr = np.array(_vals(ou_retain_eval["forget_truth_ratio"], "score"))
    assert s["forget_quality"] == stats.ks_2samp(1 / (tr + 1e-10), 1 / (ret_tr + 1e-10)).pvalue
