"""`baldro report` on run folders laid out as `baldro unlearn` + `baldro eval --out <run>/eval` write them."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from baldro.cli.main import main
from baldro.reports.records import load_run
from baldro.reports.tables import final_iqr, method_table


def _run(folder: Path, fq: float, mu: float, losses: list[float]) -> Path:
    (folder / "eval").mkdir(parents=True)
    (folder / "eval" / "TOFU_SUMMARY.json").write_text(json.dumps(
        {"forget_quality": fq, "model_utility": mu, "forget_truth_ratio": 0.5, "privleak": None}))
    rows = [{"step": 1, "index": i, "loss": 9.0, "weight": 0.1, "nll": 1.0} for i in range(len(losses))]
    rows += [{"step": 2, "index": i, "loss": v, "weight": 0.1, "nll": v / 2} for i, v in enumerate(losses)]
    (folder / "per_sample.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def test_records_read_summary_and_the_last_logged_loss_per_sample(tmp_path: Path) -> None:
    record = load_run(_run(tmp_path / "npo_dv", 0.2, 0.5, [float(v) for v in range(11)]))
    assert record.method == "npo_dv" and record.metric("forget_quality") == 0.2
    assert math.isnan(record.metric("privleak"))
    assert final_iqr(record, "loss") == pytest.approx(9.0 - 1.0)
    assert final_iqr(record, "nll") == pytest.approx(4.5 - 0.5)


def test_report_command_with_two_runs_and_a_retain_reference(tmp_path: Path) -> None:
    runs = [_run(tmp_path / "npo", 0.1, 0.6, [1.0, 2.0, 3.0]), _run(tmp_path / "npo_g", 0.3, 0.5, [2.0, 2.0, 2.0])]
    retain = tmp_path / "retain_eval"
    retain.mkdir()
    (retain / "TOFU_SUMMARY.json").write_text(json.dumps({"forget_quality": 1.0, "model_utility": 0.7}))
    assert main(["report", *map(str, runs), "--retain", str(retain), "--out", str(tmp_path / "rep")]) == 0
    text = (tmp_path / "rep" / "report.md").read_text()
    assert "| npo |" in text and "| npo_g |" in text and "| retain |" in text
    table = method_table([load_run(r) for r in runs])
    assert table["npo_g"]["final_loss_iqr"] == (0.0, 0.0)
    assert table["npo"]["log10_forget_quality"][0] == pytest.approx(-1.0)


def test_report_on_a_folder_without_summary_is_one_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty"), "--out", str(tmp_path / "rep")]) == 2
    assert "no TOFU_SUMMARY.json" in capsys.readouterr().err
    assert not (tmp_path / "rep").exists()
