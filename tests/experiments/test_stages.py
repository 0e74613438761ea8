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


def test_a_stage_another_process_is_building_is_refused_not_raced(tmp_path: Path) -> None:
    # What happened once: a killed study's worker still built runs/npo/seed0 while the resumed study rebuilt it;
    # both wrote the same folder and the same `.seed0.log`. Now the folder's lock names the holder instead.
    from baldro.errors import ConfigError
    from baldro.runfolder.lock import FolderLock

    # another open file description: flock conflicts as with another process
    with FolderLock(tmp_path / "a"), pytest.raises(ConfigError, match=r"a is in use by pid \d+"):
        run_stage(Stage("s", tmp_path / "a", _noisy, ("x",)), lambda event: None)
    assert not (tmp_path / "a").exists()
    run_stage(Stage("s", tmp_path / "a", _noisy, ("x",)), lambda event: None)  # free again: built, lock file gone
    assert (tmp_path / "a" / DONE).exists() and not (tmp_path / ".a.lock").exists()


def test_a_lock_left_by_a_killed_run_is_taken_over(tmp_path: Path) -> None:
    (tmp_path / ".a.lock").write_text('{"pid": 999999999, "started": "2026-01-01 00:00:00 UTC"}\n')
    run_stage(Stage("s", tmp_path / "a", _noisy, ("x",)), lambda event: None)
    assert (tmp_path / "a" / "out.txt").read_text() == "x" and not (tmp_path / ".a.lock").exists()


def test_demo_and_study_refuse_a_folder_another_run_holds(tmp_path: Path) -> None:
    from baldro.errors import ConfigError
    from baldro.experiments.demo import run_demo
    from baldro.experiments.study import StudyProtocol, run_study
    from baldro.runfolder.lock import FolderLock

    out = tmp_path / "out"
    with FolderLock(out):
        with pytest.raises(ConfigError, match="out is in use by pid"):
            run_demo(out, methods=("npo",), seeds=1)
        with pytest.raises(ConfigError, match="out is in use by pid"):
            run_study(out, StudyProtocol(methods=("npo",), seeds=1, beta_grid=()))
    assert not out.exists()  # nothing written


_WORKER_SCRIPT = """
import os, signal, sys, time
from concurrent.futures import ProcessPoolExecutor
import multiprocessing
from baldro.experiments import stages

def main(pid_file):
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(1, mp_context=context, initializer=stages._init_worker, initargs=(1, context.Queue()))
    pool.submit(_sleep, pid_file)
    while not os.path.exists(pid_file):
        time.sleep(0.05)
    os.kill(os.getpid(), signal.SIGKILL)  # the main process dies without any clean-up

def _sleep(pid_file):
    with open(pid_file + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.replace(pid_file + ".tmp", pid_file)
    time.sleep(120)

if __name__ == "__main__":
    sys.modules["__mp_main__"] = sys.modules["__main__"]
    main(sys.argv[1])
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_workers_die_with_the_process_that_started_them(tmp_path: Path) -> None:
    import subprocess

    script, pid_file = tmp_path / "parent.py", tmp_path / "worker.pid"
    script.write_text(_WORKER_SCRIPT)
    subprocess.run([sys.executable, str(script), str(pid_file)], cwd=tmp_path, timeout=120, check=False)
    worker = int(pid_file.read_text())
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(worker, 9)
    pytest.fail(f"worker {worker} outlived the killed main process")
