"""``--out`` is resolved before locking (a link and its folder are one folder), a link given as ``--out`` is kept,
and ``--out`` may never be, or hold, one of the command's inputs."""

from __future__ import annotations

import json
import os

import pytest

from baldro.cli.main import main
from baldro.runfolder import FolderLock, staged


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("baldro: error: "), err
    return lines[0]


def test_out_given_as_a_link_is_locked_as_the_folder_it_names(tmp_path, capsys, synth_dir):
    real, link = tmp_path / "ev", tmp_path / "ev_link"
    real.mkdir()
    link.symlink_to(real)
    with FolderLock(real):
        assert main(["eval", "tofu", "--model", "m", "--data", str(synth_dir), "--out", str(link)]) == 2
        assert f"{real} is in use by pid {os.getpid()}" in _one_error_line(capsys)


def test_data_synth_into_a_link_keeps_the_link_and_leaves_nothing_beside_it(tmp_path):
    real, link = tmp_path / "bench", tmp_path / "bench_link"
    real.mkdir()
    link.symlink_to(real)
    assert main(["data", "synth", "--out", str(link), "--authors", "4", "--questions", "2"]) == 0
    assert main(["data", "synth", "--out", str(link), "--authors", "5", "--questions", "2", "--overwrite"]) == 0
    assert link.is_symlink() and link.resolve() == real.resolve()
    assert json.loads((real / "META.json").read_text())["authors"] == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench", "bench_link"]  # no .bench_link.old-PID


def test_a_staged_write_cleans_what_a_killed_one_left(tmp_path):
    out = tmp_path / "rep"
    (tmp_path / ".rep.k1ll3d.tmp").mkdir()  # kill -9 during `model tiny` / `report` leaves this
    (tmp_path / ".rep.old-123").mkdir()  # ... or this, between its two renames
    with staged(out) as tmp:
        (tmp / "report.md").write_text("x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep"]


def _eval_file(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"forget_truth_ratio": {"agg_value": 0.5, "value_by_index": {"0": {"score": 0.5}}}}))
    return path


def test_summarize_refuses_an_out_that_is_its_input(tmp_path, capsys):
    data = _eval_file(tmp_path / "TOFU_EVAL.json")
    before = data.read_text()
    assert main(["eval", "summarize", str(data), "--out", str(data)]) == 2
    assert f"--out {data} is the input eval_json {data}: the output would replace it" in _one_error_line(capsys)
    retain = _eval_file(tmp_path / "retain" / "TOFU_EVAL.json")
    assert main(["eval", "summarize", str(data), "--retain-logs", str(retain), "--out", str(retain)]) == 2
    assert "is the input --retain-logs" in _one_error_line(capsys)
    assert data.read_text() == before


def test_report_refuses_an_out_that_is_or_holds_a_run(tmp_path, capsys):
    run = tmp_path / "runs" / "npo"
    (run / "eval").mkdir(parents=True)
    (run / "eval" / "TOFU_SUMMARY.json").write_text(json.dumps({"forget_quality": 0.5, "model_utility": 0.4}))
    (run / "model.safetensors").write_text("weights")
    for out in (run, tmp_path / "runs"):
        assert main(["report", str(run), "--out", str(out), "--overwrite"]) == 2
        relation = "is" if out == run else "holds"
        assert f"--out {out} {relation} the input run {run}" in _one_error_line(capsys)
    assert (run / "model.safetensors").read_text() == "weights"
    assert main(["report", str(run), "--out", str(run / "report")]) == 0  # beneath a run is fine


@pytest.mark.parametrize("flag", ["--model", "--data"])
def test_eval_refuses_an_out_that_is_an_input(tmp_path, capsys, synth_dir, tiny_model_dir, flag):
    out = tiny_model_dir if flag == "--model" else synth_dir
    assert main(["eval", "tofu", "--model", str(tiny_model_dir), "--data", str(synth_dir), "--out", str(out),
                 "--overwrite"]) == 2
    assert f"--out {out} is the input {flag}" in _one_error_line(capsys)
