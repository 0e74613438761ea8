"""The eval benchmark runs in --quick mode: both evaluators' CPU and wall times and ratios, and their agreement."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "eval_bench.py"


def test_eval_bench_quick_prints_ratio_and_agrees() -> None:
    out = subprocess.run([sys.executable, str(BENCH), "--quick", "--json", "--device", "cpu"], check=True,
                         capture_output=True, text=True)
    row = json.loads(out.stdout.strip().splitlines()[-1])
    assert row["ours_items_per_s"] > 0 and row["anchor_items_per_s"] > 0
    assert row["speedup"] == pytest.approx(row["anchor_s"] / row["ours_s"], abs=0.05)
    assert row["cpu_time_ratio"] == pytest.approx(row["anchor_cpu_s"] / row["ours_cpu_s"], abs=0.05)
    # the anchor is open-unlearning's default TOFU suite, its pre-computed metrics included
    assert row["anchor_suite"] == ["forget_quality", "forget_Q_A_Prob", "forget_Q_A_ROUGE", "model_utility", "privleak",
                                   "extraction_strength"]
    expected = {"forget_Q_A_Prob", "forget_Q_A_PARA_Prob", "forget_Q_A_PERT_Prob", "forget_truth_ratio",
                "forget_Q_A_ROUGE", "extraction_strength", "mia_min_k", "retain_Truth_Ratio", "ra_Q_A_Prob_normalised",
                "wf_Truth_Ratio", "wf_Q_A_ROUGE"}
    assert expected <= set(row["metrics_compared"])
    assert row["max_rel_diff"] < 1e-5 and row["values_compared"] > 100 and 0 <= row["max_abs_diff"] < 1e-4
    assert row["generations_equal"] is True and row["generations_compared"] == 4 * 4  # 4 splits × 4 quick items
    assert row["answer_drafts"] is True
    assert set(row["mia_auc_ours"]) == {"mia_min_k", "mia_min_k_plus_plus", "mia_loss", "mia_zlib"}
    assert row["mia_auc_anchor"] == {"mia_min_k": pytest.approx(row["mia_auc_ours"]["mia_min_k"], abs=1e-9)}


def test_eval_bench_phases_and_repeats() -> None:
    out = subprocess.run([sys.executable, str(BENCH), "--quick", "--json", "--device", "cpu", "--phases", "--repeats", "2",
                          "--no-answer-drafts"], check=True, capture_output=True, text=True)
    row = json.loads(out.stdout.strip().splitlines()[-1])
    assert row["repeats"] == 2 and len(row["ours_cpu_s_runs"]) == len(row["anchor_cpu_s_runs"]) == 2
    assert row["ours_cpu_s"] == pytest.approx(min(row["ours_cpu_s_runs"]), abs=1e-3)
    for side in ("ours", "anchor"):
        phases = row[f"{side}_phases"]
        assert {"tokenise", "score", "decode", "rouge"} <= set(phases)
        # exclusive phases add up to the first round's CPU time and forward FLOPs
        assert sum(p["cpu_s"] for p in phases.values()) == pytest.approx(row[f"{side}_cpu_s_runs"][0], rel=0.02, abs=0.02)
        assert sum(p["tflop"] for p in phases.values()) == pytest.approx(row[f"{side}_forward_tflop"], rel=1e-3, abs=1e-6)
        assert phases["decode"]["tflop"] > 0 and phases["score"]["tflop"] > 0 and phases["rouge"]["tflop"] == 0
    assert row["generations_equal"] is True and row["pad_is_eos"] is False and row["answer_drafts"] is False


def test_phase_clock_charges_nested_calls_exclusively() -> None:
    sys.path.insert(0, str(BENCH.parent))
    from eval_phases import PhaseClock

    flops = {"n": 0}

    class Work:
        def inner(self) -> None:
            flops["n"] += 5

        def outer(self) -> None:
            flops["n"] += 100
            self.inner()
            self.inner()

    work = Work()
    clock = PhaseClock(lambda: flops["n"] * 10**12)
    clock.patch(Work, "outer", "score")
    clock.patch(work, "inner", "tokenise")
    with clock:
        work.outer()
        flops["n"] += 1  # outside every patched call
    clock.restore()
    assert clock.tflop == {"other": 1.0, "score": 100.0, "tokenise": 10.0}
    assert "outer" in Work.__dict__ and "inner" not in vars(work)  # originals back
    assert Work.outer is not None and work.inner.__func__ is Work.inner


def test_agreement_reports_relative_and_absolute_differences_and_nan_on_one_side() -> None:
    sys.path.insert(0, str(BENCH.parent))
    from eval_bench import agreement

    def entry(values: list[float]) -> dict:
        return {"m": {"value_by_index": {str(i): {"v": v} for i, v in enumerate(values)}}}

    got = agreement(entry([1.0, 1e-4, float("nan")]), entry([1.0 + 1e-6, 2e-4, float("nan")]))
    assert got["max_rel_diff"] == pytest.approx(0.5) and got["max_rel_diff_at"] == "m/1/v"
    assert got["max_abs_diff"] == pytest.approx(1e-4) and got["max_abs_diff_at"] == "m/1/v"  # both NaN: equal
    one_sided = agreement(entry([1.0, float("nan")]), entry([1.0, 2.0]))
    assert one_sided["max_rel_diff"] == one_sided["max_abs_diff"] == float("inf")
    assert one_sided["max_abs_diff_at"] == "m/1/v"
