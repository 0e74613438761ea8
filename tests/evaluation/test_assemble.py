"""The MIA block, memorisation entries and agg values that the TOFU and MUSE evaluators share (evaluation/assemble)."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from baldro.evaluation.assemble import MIA_METRICS, add_mia, fill_agg_values, memorisation_entries
from baldro.evaluation.scoring import SeqScore


class _Tok:
    """Decodes token ids as letters (id 1 -> 'a'), dropping ids below 1 as special tokens."""

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return "".join(chr(96 + i) for i in ids if i >= 1)


def _score(avg_loss: float, logprobs: list[float], hits: list[bool]) -> SeqScore:
    lp = np.array(logprobs, dtype=np.float32)
    return SeqScore(avg_loss, float(np.exp(-avg_loss)), lp, np.array(hits), np.zeros_like(lp), np.ones_like(lp))


def test_add_mia_without_holdout_records_the_reason_for_every_attack_and_privleak():
    out: dict = {}
    reasons: dict = {}
    add_mia(out, reasons, _Tok(), ([_score(0.1, [-0.1], [True])], [[-100, 1]]), None, "holdout10 is missing")
    assert out == {}
    assert reasons == {name: "holdout10 is missing" for name in MIA_METRICS}
    assert set(MIA_METRICS) == {"mia_min_k", "mia_min_k_plus_plus", "mia_loss", "mia_zlib", "privleak"}


def test_add_mia_entries_and_aucs_by_hand():
    # members (forget) have lower losses than non-members (holdout): the loss attack separates them perfectly.
    forget = ([_score(0.1, [-0.1, -0.2, -0.3], [True] * 3), _score(0.2, [-0.2, -0.4, -0.5], [True] * 3)],
              [[-100, 1, 2, 3], [-100, 2, 3, 4]])
    holdout = ([_score(0.9, [-0.9, -1.0, -2.0], [False] * 3), _score(0.5, [-0.5, -3.0, -1.0], [False] * 3)],
               [[-100, 1, 1, 1], [-100, 5, 6, 7]])
    out: dict = {}
    reasons: dict = {}
    add_mia(out, reasons, _Tok(), forget, holdout, "unused")
    assert reasons == {}
    assert sorted(out) == ["mia_loss", "mia_min_k", "mia_min_k_plus_plus", "mia_zlib"]
    assert out["mia_loss"]["forget"]["value_by_index"] == {"0": {"score": 0.1}, "1": {"score": 0.2}}
    assert out["mia_loss"]["forget"]["agg_value"] == pytest.approx(0.15)
    # zlib: avg_loss / zlib length of the decoded labelled tokens ("abc", "efg" for the second holdout row)
    assert out["mia_zlib"]["holdout"]["value_by_index"]["1"]["score"] == pytest.approx(0.5 / len(zlib.compress(b"efg")))
    # min_k (k = 0.4) drops the EOS prediction: the lowest 40 % of the first two log-probs -> one token
    assert out["mia_min_k"]["forget"]["value_by_index"]["0"]["score"] == pytest.approx(0.2)
    fill_agg_values(out, "tofu")
    assert out["mia_loss"]["auc"] == out["mia_loss"]["agg_value"] == pytest.approx(1.0)
    # min_k: members 0.2, 0.4; non-members 1.0, 3.0 -> perfectly separated as well
    assert out["mia_min_k"]["auc"] == pytest.approx(1.0)


def test_memorisation_entries_exclude_the_eos_prediction():
    scores = [_score(0.1, [-0.1] * 4, [False, True, True, False]), _score(0.1, [-0.1] * 3, [True, True, True])]
    entries = memorisation_entries(scores)
    # hits without the last (EOS) prediction: [F, T, T] -> EM 2/3, ES 1 - 1/3; [T, T] -> EM 1, ES 1
    assert entries["exact_memorization"]["value_by_index"]["0"]["score"] == pytest.approx(2 / 3)
    assert entries["extraction_strength"]["value_by_index"]["0"]["score"] == pytest.approx(2 / 3)
    assert entries["exact_memorization"]["value_by_index"]["1"]["score"] == pytest.approx(1.0)
    fill_agg_values(entries, "muse")
    assert entries["exact_memorization"]["agg_value"] == pytest.approx((2 / 3 + 1) / 2)
    assert "auc" not in entries["exact_memorization"]
