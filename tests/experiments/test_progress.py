"""The demo's / study's progress display: one line rewritten in place on a terminal, whole lines otherwise."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from baldro.experiments.progress import BAR_WIDTH, Progress, clock

SRC = str(Path(__file__).resolve().parents[2] / "src")


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def _events(progress: Progress) -> None:
    progress({"name": "a", "status": "started"})
    progress({"name": "a", "status": "done", "seconds": 1.25})
    progress({"name": "b", "status": "cached"})
    progress({"name": "c", "status": "started"})


def test_clock_formats_minutes_and_seconds() -> None:
    assert [clock(s) for s in (0, 9.9, 83.4, 3600)] == ["0:00", "0:09", "1:23", "60:00"]


def test_plain_mode_writes_whole_lines_for_finished_stages_only() -> None:
    stream = io.StringIO()  # not a terminal
    progress = Progress(3, prefix="t", stream=stream)
    assert not progress.live
    _events(progress)
    progress({"name": "c", "status": "failed", "seconds": 0.5, "log": "/x/.c.log"})
    progress.close()
    text = stream.getvalue()
    assert "\r" not in text and text.endswith("\n")
    assert text.splitlines() == ["[t 1/3 0:00] a: done in 1.2 s", "[t 2/3 0:00] b: cached",
                                 "[t 2/3 0:00] c: FAILED after 0.5 s; its output: /x/.c.log"]


def test_live_mode_rewrites_one_line_with_count_bar_running_stages_and_last_event() -> None:
    stream = FakeTTY()
    progress = Progress(4, prefix="baldro demo", stream=stream, start=time.perf_counter() - 83.4, tick_s=0)
    assert progress.live
    _events(progress)
    text = stream.getvalue()
    assert "\n" not in text  # still one line
    frames = text.split("\r")[1:]
    assert len(frames) == 4  # one redraw per event
    last = frames[-1]
    half = "#" * (BAR_WIDTH // 2) + "-" * (BAR_WIDTH // 2)
    assert last.startswith("[baldro demo 2/4 1:2") and f"[{half}]" in last
    assert "running: c (0:00)" in last and last.rstrip().endswith("last: b cached")
    assert "last: a done in 1.2 s" in frames[1]
    # each frame covers the previous one: a shorter frame is blank-padded to the previous length
    for before, after in zip(frames, frames[1:], strict=False):
        assert len(after) >= len(before.rstrip())
    progress({"name": "c", "status": "done", "seconds": 2.0})
    progress.close()
    final = stream.getvalue()
    assert final.endswith("\n") and final.count("\n") == 1 and "[baldro demo 3/4" in final.split("\r")[-1]


def test_live_mode_prints_a_failure_as_its_own_line_above_the_status_line() -> None:
    stream = FakeTTY()
    progress = Progress(2, prefix="t", stream=stream, tick_s=0)
    progress({"name": "a", "status": "started"})
    progress({"name": "a", "status": "failed", "seconds": 0.5, "log": "/x/.a.log"})
    text = stream.getvalue()
    failed_line = text.split("\r")[-2]
    assert failed_line.rstrip(" \n").endswith("a: FAILED after 0.5 s; its output: /x/.a.log") and failed_line.endswith("\n")
    assert text.split("\r")[-1].startswith("[t 0/2 ")  # the status line is drawn again below it
    progress.close()
    progress.close()  # idempotent
    assert stream.getvalue().count("\n") == 2


@pytest.mark.parametrize("columns", [20, 40, 80])
def test_live_line_never_wraps(columns: int) -> None:
    progress = Progress(10, prefix="baldro study", stream=FakeTTY(), tick_s=0)
    for k in range(3):
        progress({"name": f"unlearn npo+dv beta=2 seed {k}", "status": "started"})
    line = progress.status_line(columns)
    assert len(line) == columns - 1 and line.endswith("...")
    assert len(progress.status_line(400)) < 399 and "seed 2 (0:00)" in progress.status_line(400)


def test_live_line_is_refreshed_while_a_stage_runs() -> None:
    stream = FakeTTY()
    progress = Progress(1, prefix="t", stream=stream, start=time.perf_counter() - 59.0, tick_s=0.05)
    progress({"name": "slow", "status": "started"})  # starts the refresh thread
    deadline = time.perf_counter() + 10
    while "[t 0/1 1:00]" not in stream.getvalue() and time.perf_counter() < deadline:
        time.sleep(0.05)
    progress.close()
    frames = stream.getvalue().split("\r")[1:]
    assert len(frames) >= 2 and any(f.startswith("[t 0/1 1:00]") for f in frames)  # redrawn as the clock moved
    assert progress._ticker is not None and not progress._ticker.is_alive()


# A real terminal: stderr of a fresh interpreter is a pseudo-terminal, the stages write noise to fds 1 and 2.
_SCRIPT = """
import os, sys, time
from pathlib import Path
from baldro.experiments.progress import Progress
from baldro.experiments.stages import Job, Stage, run_jobs, run_stages

def noisy(folder, text):
    folder.mkdir(parents=True)
    print("python stdout", text)
    print("python stderr", file=sys.stderr)
    os.write(2, b"raw fd 2 {'train_runtime': 1.0}\\n")
    time.sleep(0.4)

if __name__ == "__main__":
    out = Path(sys.argv[1])
    first, second = Stage("first", out / "a", noisy, ("A",)), Stage("second", out / "b", noisy, ("B",))
    with Progress(2, prefix="t", tick_s=0.1) as progress:
        if sys.argv[2] == "workers":  # two jobs side by side in worker processes, as the demo's later phases
            run_jobs([Job([first]), Job([second])], 2, progress)
        else:
            run_stages([first, second], progress)
    print("after", file=sys.stderr)
"""


def _run_script(out: Path, tty: bool, mode: str = "main") -> str:
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    script = out / "stages_script.py"  # a file, not -c: spawned workers re-import the stage function from it
    script.write_text(_SCRIPT)
    cmd = [sys.executable, str(script), str(out), mode]
    if not tty:
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, check=True)
        return done.stderr
    import pty

    primary, secondary = pty.openpty()
    proc = subprocess.Popen(cmd, stderr=secondary, stdout=subprocess.DEVNULL, env=env)
    os.close(secondary)
    chunks = []
    while True:
        try:
            data = os.read(primary, 4096)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(primary)
    assert proc.wait(timeout=120) == 0
    return b"".join(chunks).decode().replace("\r\n", "\n")  # the terminal turns \n into \r\n


@pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")
def test_on_a_terminal_one_line_is_rewritten_and_the_stage_noise_stays_in_the_logs(tmp_path: Path) -> None:
    text = _run_script(tmp_path, tty=True)
    assert text.endswith("\nafter\n") and text.count("\n") == 2  # one status line, ended once, then "after"
    frames = [f.rstrip() for f in text.split("\n")[0].split("\r") if f]
    assert any("running: first (0:00)" in f for f in frames) and any("running: second" in f for f in frames)
    assert re.fullmatch(r"\[t 2/2 0:0\d\] \[#+\] last: second done in \d+\.\d s", frames[-1])
    assert "raw fd" not in text and "python" not in text
    log = (tmp_path / "a" / "stage.log").read_text()
    assert "python stdout A" in log and "raw fd 2 {'train_runtime': 1.0}" in log


def test_through_a_pipe_the_same_run_prints_whole_lines_and_no_carriage_return(tmp_path: Path) -> None:
    text = _run_script(tmp_path, tty=False)
    assert "\r" not in text
    lines = text.splitlines()
    assert len(lines) == 3 and lines[2] == "after"
    assert re.fullmatch(r"\[t 1/2 0:0\d\] first: done in \d+\.\d s", lines[0])
    assert re.fullmatch(r"\[t 2/2 0:0\d\] second: done in \d+\.\d s", lines[1])


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")
def test_on_a_terminal_worker_processes_feed_the_same_single_line(tmp_path: Path) -> None:
    text = _run_script(tmp_path, tty=True, mode="workers")  # workers import torch: seconds
    assert text.endswith("\nafter\n") and text.count("\n") == 2
    frames = [f.rstrip() for f in text.split("\n")[0].split("\r") if f]
    assert any("running: " in f and "first" in f for f in frames) and frames[-1].startswith("[t 2/2 ")
    assert "raw fd" not in text and "python" not in text
    assert "raw fd 2" in (tmp_path / "b" / "stage.log").read_text()


def test_entering_a_live_progress_draws_at_once_and_leaving_ends_the_line() -> None:
    stream = FakeTTY()
    with Progress(3, prefix="t", stream=stream, tick_s=0):
        assert stream.getvalue() == "\r[t 0/3 0:00] [" + "-" * BAR_WIDTH + "]"
    assert stream.getvalue().endswith("]\n")
    plain = io.StringIO()
    with Progress(3, prefix="t", stream=plain):
        pass
    assert plain.getvalue() == ""  # plain mode writes only stage lines
