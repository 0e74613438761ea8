"""The study-regime measurement's per-evaluation properties, on a hand-made TOFU_EVAL.json / TOFU_SUMMARY.json."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "study_regime.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("study_regime", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_forget_properties_exact_match_and_nll_spread(tmp_path: Path) -> None:
    probs = [math.exp(-x) for x in (0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0)]  # NLL 0..10
    gens = [("Ann.", " Ann. "), ("Bob.", "Bo.")] + [("x", "y")] * 9  # one exact match after strip, out of 11
    ev = {
        "forget_Q_A_Prob": {"value_by_index": {str(i): {"prob": p} for i, p in enumerate(probs)}},
        "forget_Q_A_ROUGE": {"value_by_index": {str(i): {"ground_truth": t, "generation": g}
                                                for i, (t, g) in enumerate(gens)}},
    }
    (tmp_path / "TOFU_EVAL.json").write_text(json.dumps(ev))
    (tmp_path / "TOFU_SUMMARY.json").write_text(json.dumps({"forget_quality": 0.5, "model_utility": 0.7,
                                                            "forget_truth_ratio": 0.3}))
    props = load_bench().forget_properties(tmp_path)
    assert props["em"] == pytest.approx(1 / 11)
    assert props["n"] == 11
    assert props["nll_median"] == pytest.approx(5.0)
    assert props["nll_spread"] == pytest.approx(9.0 - 1.0)  # numpy linear quantiles of 0..10: q90 = 9, q10 = 1
    assert (props["fq"], props["mu"], props["tr"]) == (0.5, 0.7, 0.3)
