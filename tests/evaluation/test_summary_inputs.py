"""``eval summarize`` refuses a summary where per-item values are needed, never writes a bare NaN (a non-finite
per-item value makes its metric null, with the reason), and `eval` refuses out-of-range counts."""

from __future__ import annotations

import json
import math

import pytest

from baldro.cli.main import main
from baldro.evaluation.files import write_json
from baldro.evaluation.summary import summarize


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("baldro: error: "), err
    return lines[0]


def test_a_summary_given_as_the_eval_file_is_refused(ou_eval, ou_retain_eval, tmp_path, capsys):
    path = tmp_path / "TOFU_SUMMARY.json"
    path.write_text(json.dumps(summarize(ou_eval, ou_retain_eval)))
    assert main(["eval", "summarize", str(path)]) == 2
    assert (f"{path}: a summary (metric → number), not an *_EVAL.json with per-item values; give the TOFU_EVAL.json "
            "written beside it") in _one_error_line(capsys)


def test_a_nan_score_makes_its_metrics_null_with_the_reason_and_no_bare_nan_is_written(ou_eval, ou_retain_eval,
                                                                                        tmp_path, capsys):
    first = next(iter(ou_eval["forget_truth_ratio"]["value_by_index"]))
    ou_eval["forget_truth_ratio"]["value_by_index"][first]["score"] = math.nan
    data = tmp_path / "TOFU_EVAL.json"
    data.write_text(json.dumps(ou_eval))  # Python writes a bare NaN, as open-unlearning's json.dump does
    retain = tmp_path / "retain.json"
    retain.write_text(json.dumps(ou_retain_eval))
    out = tmp_path / "summary.json"
    assert main(["eval", "summarize", str(data), "--retain-logs", str(retain), "--out", str(out)]) == 0
    text = out.read_text()
    summary = json.loads(text, parse_constant=lambda name: pytest.fail(f"a bare {name} in the summary"))
    assert summary["forget_quality"] is None and summary["forget_truth_ratio"] is None
    assert summary["skipped"]["forget_quality"].startswith(f"forget_truth_ratio items {first!r} have no finite score")
    assert summary["skipped"]["forget_truth_ratio"] == f"not a finite number: items {first!r} hold NaN or infinite values"
    assert summary["model_utility"] is not None  # the other metrics are unaffected


def test_json_files_get_null_for_nan_and_infinity(tmp_path):
    import numpy as np

    path = write_json(tmp_path / "x.json", {"a": math.nan, "b": [1.0, math.inf, np.float32("nan")], "c": {"d": -math.inf}})
    assert json.loads(path.read_text()) == {"a": None, "b": [1.0, None, None], "c": {"d": None}}


@pytest.mark.parametrize("flag, value, expected", [
    ("--max-new-tokens", "-1", "--max-new-tokens -1: must be ≥ 0"),
    ("--max-items", "0", "--max-items 0: must be ≥ 1 (leave it out to evaluate every row)"),
    ("--batch-size", "0", "--batch-size 0: must be ≥ 1"),
    ("--generation-batch-size", "-2", "--generation-batch-size -2: must be ≥ 1"),
])
def test_eval_counts_are_range_checked_before_out_is_touched(tmp_path, capsys, flag, value, expected):
    out = tmp_path / "ev"
    assert main(["eval", "tofu", "--model", "m", "--data", "d", "--out", str(out), flag, value]) == 2
    assert _one_error_line(capsys) == f"baldro: error: {expected}"
    assert not out.exists()


def test_muse_token_budgets_are_range_checked(tmp_path, capsys):
    assert main(["eval", "muse", "--model", "m", "--data", "d", "--out", str(tmp_path / "ev"),
                 "--verbmem-max-new-tokens", "-5"]) == 2
    assert "--verbmem-max-new-tokens -5: must be ≥ 0" in _one_error_line(capsys)


def test_report_refuses_runs_of_different_benchmarks(tmp_path, capsys):
    for name, summary in (("tofu_run", "TOFU_SUMMARY.json"), ("muse_run", "MUSE_SUMMARY.json")):
        (tmp_path / name / "eval").mkdir(parents=True)
        (tmp_path / name / "eval" / summary).write_text(json.dumps({"privleak": 10.0}))
    assert main(["report", str(tmp_path / "tofu_run"), str(tmp_path / "muse_run"), "--out", str(tmp_path / "r")]) == 2
    line = _one_error_line(capsys)
    assert f"different benchmarks (MUSE: {tmp_path / 'muse_run'}; TOFU: {tmp_path / 'tofu_run'})" in line
    assert not (tmp_path / "r").exists()
