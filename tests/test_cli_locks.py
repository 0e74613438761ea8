"""Every command that writes a folder refuses one another process holds; `baldro report` refuses what it would
overwrite and names a missing run folder."""

from __future__ import annotations

import json
import os

import pytest

from baldro.cli.main import main
from baldro.runfolder import FolderLock, lock_path


@pytest.mark.parametrize("command", [
    ["eval", "tofu", "--model", "m", "--data", "d", "--out", "{out}"],
    ["eval", "muse", "--model", "m", "--data", "d", "--out", "{out}"],
    ["demo", "--out", "{out}", "--quick"],
    ["study", "--out", "{out}", "--quick"],
    ["sweep", "--config", "{cfg}", "--grid", "aggregator.beta=1,2", "--out", "{out}"],
    ["report", "{run}", "--out", "{out}"],
    ["data", "synth", "--out", "{out}"],
    ["model", "tiny", "--data", "{run}", "--out", "{out}"],
])
def test_a_folder_held_by_another_run_is_refused_at_once(tmp_path, capsys, command):
    out, cfg, run = tmp_path / "out", tmp_path / "base.yaml", tmp_path / "run"
    cfg.write_text("data: {source: d}\n")
    (run / "eval").mkdir(parents=True)
    (run / "eval" / "TOFU_SUMMARY.json").write_text(json.dumps({"forget_quality": 0.5, "model_utility": 0.5}))
    (run / "full.json").write_text(json.dumps({"question": "q?", "answer": "a"}) + "\n")
    argv = [a.format(out=out, cfg=cfg, run=run) for a in command]
    with FolderLock(out):
        assert main(argv) == 2
        assert f"is in use by pid {os.getpid()}" in capsys.readouterr().err
    assert not out.exists() and not lock_path(out).exists()


def _run(folder):
    (folder / "eval").mkdir(parents=True)
    (folder / "eval" / "TOFU_SUMMARY.json").write_text(json.dumps({"forget_quality": 0.5, "model_utility": 0.4}))
    return str(folder)


def test_report_refuses_a_non_empty_out_and_names_a_missing_run(tmp_path, capsys):
    run, out = _run(tmp_path / "npo"), tmp_path / "rep"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(["report", run, "--out", str(out)]) == 2
    assert "not empty" in capsys.readouterr().err and (out / "notes.txt").read_text() == "mine"
    assert main(["report", str(tmp_path / "nope"), "--out", str(tmp_path / "rep2")]) == 2
    assert f"{tmp_path / 'nope'}: no such folder" in capsys.readouterr().err
    assert not (tmp_path / "rep2").exists()
    assert main(["report", run, "--out", str(out), "--overwrite"]) == 0
    assert (out / "report.md").is_file() and not (out / "notes.txt").exists()


@pytest.mark.parametrize("command", ["demo", "study"])
def test_a_lock_left_by_a_killed_demo_or_study_asks_before_resuming(tmp_path, capsys, command):
    out = tmp_path / "out"
    lock_path(out).write_text(json.dumps({"pid": 999999999, "started": "2026-01-01 00:00:00 UTC"}) + "\n")
    assert main([command, "--quick", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "pid 999999999" in err and "no longer running" in err and "delete the lock file to continue" in err
    assert len(err.strip().splitlines()) == 1 and not out.exists()
