"""An evaluation cut by ``--max-items`` says so: its row counts per split are in the eval and summary files (kept by
``eval summarize``) and ``report`` flags it; a full evaluation has no such record."""

from __future__ import annotations

import json

from baldro.cli.main import main
from baldro.evaluation.tofu import evaluate_tofu


def test_a_capped_tofu_evaluation_is_recorded_and_flagged_in_reports(random_tiny_model, mini_tofu, tmp_path, capsys):
    run = tmp_path / "run"
    summary = evaluate_tofu(str(random_tiny_model), mini_tofu, out_dir=run / "eval", max_items=2, max_new_tokens=2,
                            batch_size=4, progress=False)
    capped = {"max_items": 2, "items": {"forget10_perturbed": 2, "retain_perturbed": 2, "real_authors_perturbed": 2,
                                        "world_facts_perturbed": 2, "holdout10": 2}}
    assert summary["capped"] == capped
    assert json.loads((run / "eval" / "TOFU_EVAL.json").read_text())["capped"] == capped
    assert json.loads((run / "eval" / "TOFU_SUMMARY.json").read_text())["capped"] == capped
    assert len(json.loads((run / "eval" / "TOFU_EVAL.json").read_text())["forget_Q_A_Prob"]["value_by_index"]) == 2

    assert main(["eval", "summarize", str(run / "eval" / "TOFU_EVAL.json")]) == 0
    assert json.loads(capsys.readouterr().out)["capped"] == capped

    assert main(["report", str(run), "--out", str(tmp_path / "rep")]) == 0
    report = (tmp_path / "rep" / "report.md").read_text()
    assert "**Capped evaluations** — only the first rows of each split were evaluated" in report
    assert (f"- run (`{run}`): at most 2 per split — forget10_perturbed 2, retain_perturbed 2, real_authors_perturbed "
            "2, world_facts_perturbed 2, holdout10 2") in report


def test_a_full_evaluation_records_no_cap(random_tiny_model, mini_tofu, tmp_path):
    summary = evaluate_tofu(str(random_tiny_model), mini_tofu, max_new_tokens=2, batch_size=8, progress=False)
    assert "capped" not in summary
