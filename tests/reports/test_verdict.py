"""The headline counts seeds that beat the target at the bar (step 0 always keeps it), and each report has a verdict."""

from __future__ import annotations

import json
from pathlib import Path

from baldro.reports.readme_tables import demo_table, study_table
from baldro.reports.records import RunRecord
from baldro.reports.report import summary_line
from baldro.reports.tables import method_table
from baldro.reports.verdict import BEATS_TARGET_COLUMN, beat_count, beats_target, one_line_verdict

RESULTS = Path(__file__).resolve().parents[2] / "docs" / "results"


def _seed(step, reached=True):
    return {"best_fq": 0.1, "step": step, "reached": reached}


def _method(steps, base=None, p=None, diff=0.0):
    vs = None if base is None else {"seeds": list(range(len(steps))), "p_value": p, "mean_difference": diff}
    return {"base": base, "vs_base": vs, "per_seed": {str(k): _seed(s) for k, s in enumerate(steps)}}


def test_step_zero_is_not_beating_the_target():
    assert not beats_target(_seed(0)) and not beats_target(_seed(None, reached=False))
    assert beats_target(_seed(10))
    assert beat_count(_method([0, 10, 0])) == "1/3"


def test_verdict_when_every_matched_fq_is_the_targets():
    summary = {"methods": {"npo": _method([0, 0]), "npo+dv": _method([0, 0], "npo", p=1.0)}}
    assert one_line_verdict(summary) == (
        "**Verdict:** no method's matched-utility FQ differs detectably from its base method's (α = 0.05); and no run "
        "improved on the target model within the utility bar (every matched FQ is step 0's), so at this bar the "
        "comparison says nothing about forgetting.")


def test_verdict_names_significant_differences_both_ways():
    summary = {"methods": {"npo": _method([10, 20]), "npo+dv": _method([10, 0], "npo", p=0.031, diff=0.2),
                           "npo+g": _method([20, 20], "npo", p=0.031, diff=-0.1),
                           "npo+dv β=1": _method([0, 0], "npo", p=0.001, diff=1.0)}}  # β grid: not a headline row
    assert one_line_verdict(summary) == (
        "**Verdict:** matched-utility FQ higher than the base method for npo+dv (p = 0.031); lower for npo+g "
        "(p = 0.031); 5 of 6 runs improved on the target model within the utility bar.")
    summary["methods"].pop("npo+dv")
    assert one_line_verdict(summary).startswith("**Verdict:** no method beats its base; lower than the base method "
                                                "for npo+g (p = 0.031)")


def test_the_demo_snapshot_table_says_no_seed_beat_the_target():
    summary = json.loads((RESULTS / "demo_summary.json").read_text())
    text = demo_table(summary)
    assert "reached bar" not in text and f"| {BEATS_TARGET_COLUMN} |" in text
    assert "| npo | 0.0449 [0.0449, 0.0449] | 0/3 |" in text
    assert text.splitlines()[-1].startswith("**Verdict:** ") and "no run improved on the target" in text


def test_study_tables_end_with_the_verdict():
    summary = json.loads((RESULTS / "study_summary.json").read_text())
    assert study_table(summary).splitlines()[-1] == one_line_verdict(summary)


def _record(method, fq, mu):
    return RunRecord(method, 0, {"forget_quality": fq, "model_utility": mu}, Path(method))


def test_report_line_names_the_best_fq_and_mu_against_the_target():
    table = method_table([_record("npo", 0.01, 0.5), _record("npo+dv", 0.2, 0.4)])
    line = summary_line(table, {"target": _record("target", 1e-5, 0.8)})
    assert line == ("**In one line:** highest Forget Quality: npo+dv (FQ 0.2, MU 0.4, 50% of the target's MU); "
                    "highest Model Utility: npo (MU 0.5, 62% of the target's MU) — final evaluations, mean over seeds; "
                    "no significance test (`baldro study` compares methods at matched utility).")
    alone = summary_line(method_table([RunRecord("npo", 0, {"model_utility": 0.5}, Path("x"))]))
    assert alone.startswith("**In one line:** no Forget Quality (the evaluations had no retain logs")
