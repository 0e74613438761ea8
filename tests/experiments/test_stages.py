"""The stage runner: cached stages, each stage's output in its own log file, one console line per stage."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from baldro.experiments.stages import STAGE_LOG, Progress, Stage, run_stage, run_stages
from baldro.runfolder import DONE


def _noisy(folder: Path, text: str) -> None:
    folder.mkdir(parents=True)
    (folder / "out.txt").write_text(text)
    print(f"python stdout {text}")
    print("python stderr", file=sys.stderr)
    os.write(1, b"raw fd 1\n")
    os.write(2, b"raw fd 2 {'train_runtime': 1.0}\n")


def _failing(folder: Path) -> None:
    print("about to fail")
    raise ValueError("bad stage")


def test_stage_output_goes_to_its_log_and_the_console_gets_one_line(tmp_path: Path,
                                                                     capfd: pytest.CaptureFixture[str]) -> None:
    progress = Progress(total=2, prefix="t")
    stages = [Stage("first", tmp_path / "a", _noisy, ("A",)), Stage("second", tmp_path / "b", _noisy, ("B",))]
    run_stages(stages, progress)
    out, err = capfd.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 2 and lines[0].startswith("[t 1/2 0:0") and lines[1].startswith("[t 2/2 0:0")
    assert lines[0].endswith(" s") and "first: done in " in lines[0]
    log = (tmp_path / "a" / STAGE_LOG).read_text()
    for text in ("python stdout A", "python stderr", "raw fd 1", "raw fd 2 {'train_runtime': 1.0}"):
        assert text in log
    assert (tmp_path / "a" / DONE).exists() and not (tmp_path / ".a.log").exists()
    assert (tmp_path / "b" / "out.txt").read_text() == "B"


def test_a_cached_stage_is_not_rebuilt(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    run_stage(Stage("s", tmp_path / "a", _noisy, ("first",)), lambda event: None)
    events: list[dict] = []
    run_stage(Stage("s", tmp_path / "a", _noisy, ("second",)), events.append)
    assert events == [{"name": "s", "status": "cached"}]
    assert (tmp_path / "a" / "out.txt").read_text() == "first"


def test_an_unfinished_folder_is_rebuilt(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "half.txt").write_text("")
    run_stage(Stage("s", tmp_path / "a", _noisy, ("x",)), lambda event: None)
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == sorted([DONE, STAGE_LOG, "out.txt"])


def test_a_failed_stage_names_its_log_and_leaves_no_marker(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    progress = Progress(total=1, prefix="t")
    with pytest.raises(ValueError, match="bad stage"):
        run_stage(Stage("broken", tmp_path / "a", _failing), progress)
    err = capfd.readouterr().err
    log = tmp_path / ".a.log"
    assert "broken: FAILED after" in err and str(log) in err and progress.count == 0
    assert "about to fail" in log.read_text()
    assert not (tmp_path / "a" / DONE).exists()


def test_progress_line_counts_stages_and_formats_elapsed_minutes() -> None:
    progress = Progress(total=14, prefix="baldro demo", count=4, start=time.perf_counter() - 83.4)
    progress.count += 1
    assert progress.line({"name": "unlearn npo seed 0", "status": "done", "seconds": 12.34}) == (
        "[baldro demo 5/14 1:23] unlearn npo seed 0: done in 12.3 s")
