"""Where a study's jobs run: one GPU per local worker (``--devices``), or submitit (its local executor here), with the
stage cache, the progress lines and failures working as in the default pool."""

from __future__ import annotations

import argparse
import io
import json
import os
import sys

import pytest

from baldro.errors import ConfigError
from baldro.experiments.progress import Progress
from baldro.experiments.stages import Job, Pool, Stage, run_jobs


def record_device(folder, name):  # a stage: which GPU this worker was given, and which worker it was
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "seen.json").write_text(json.dumps({"name": name, "pid": os.getpid(),
                                                  "device": os.environ.get("CUDA_VISIBLE_DEVICES")}))


def fail(folder):
    print("about to fail")
    raise RuntimeError("this stage fails")


def progress_lines(total):
    stream = io.StringIO()
    return Progress(total, prefix="t", stream=stream, live=False), stream


def test_one_gpu_per_worker(tmp_path):
    jobs = [Job([Stage(f"job {i}", tmp_path / f"j{i}", record_device, (f"j{i}",))]) for i in range(4)]
    progress, stream = progress_lines(4)
    run_jobs(jobs, Pool(devices=("5", "7")), progress)
    seen = [json.loads((tmp_path / f"j{i}" / "seen.json").read_text()) for i in range(4)]
    assert {s["device"] for s in seen} <= {"5", "7"}
    by_worker = {}
    for s in seen:
        by_worker.setdefault(s["pid"], set()).add(s["device"])
    assert all(len(d) == 1 for d in by_worker.values())  # a worker keeps its GPU
    assert len({next(iter(d)) for d in by_worker.values()}) == len(by_worker)  # no two workers share one
    assert stream.getvalue().count(": done in") == 4


def submitit_pool(tmp_path, jobs=2):
    pytest.importorskip("submitit")
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the stage functions of this test module
    return Pool(jobs=jobs, backend="submitit", executor=(("cluster", "local"),),
                folder=tmp_path / "submitit")


def test_submitit_runs_the_jobs_caches_and_reports_them(tmp_path):
    pool = submitit_pool(tmp_path)
    jobs = [Job([Stage(f"job {i}", tmp_path / f"j{i}", record_device, (f"j{i}",)),
                 Stage(f"job {i} b", tmp_path / f"j{i}b", record_device, (f"j{i}b",))]) for i in range(3)]
    progress, stream = progress_lines(6)
    run_jobs(jobs, pool, progress)
    pids = {json.loads((tmp_path / f"j{i}" / "seen.json").read_text())["pid"] for i in range(3)}
    assert len(pids) == 3 and os.getpid() not in pids  # each job in a process of its own
    assert stream.getvalue().count(": done in") == 6 and progress.count == 6
    again, stream = progress_lines(6)
    run_jobs(jobs, pool, again)  # everything cached: nothing is submitted again
    assert stream.getvalue().count(": cached") == 6


def test_a_failed_submitit_job_names_its_stage_and_log(tmp_path):
    pool = submitit_pool(tmp_path)
    from baldro.experiments.cluster import JobFailedError

    progress, stream = progress_lines(2)
    jobs = [Job([Stage("good", tmp_path / "good", record_device, ("good",))]), Job([Stage("bad", tmp_path / "bad", fail)])]
    with pytest.raises(JobFailedError, match=r"bad failed in its submitit job; its output: .*\.bad\.log"):
        run_jobs(jobs, pool, progress)
    assert (tmp_path / "good" / "seen.json").is_file()  # the other job still ran to the end
    assert "about to fail" in (tmp_path / ".bad.log").read_text()
    assert "bad: FAILED" in stream.getvalue()


@pytest.mark.parametrize(("argv", "message"), [
    (["--devices", "0,x"], "--devices=0,x: give distinct GPU ids"),
    (["--devices", "1,1"], "--devices=1,1: give distinct GPU ids"),
    (["--submitit", "cluster=local"], "--submitit parameters need --backend submitit"),
    (["--backend", "submitit", "--devices", "0"], "--devices assigns this machine's GPUs"),
    (["--backend", "submitit", "--submitit", "nokey"], "--submitit 'nokey': give KEY=VALUE"),
    (["--jobs", "0"], "--jobs=0: give at least 1"),
])
def test_pool_arguments_are_checked(tmp_path, argv, message):
    from baldro.cli.pool_args import add_pool_arguments, pool_from_args

    parser = argparse.ArgumentParser()
    add_pool_arguments(parser)
    with pytest.raises(ConfigError, match=message):
        pool_from_args(parser.parse_args(argv), tmp_path)
    pool = pool_from_args(parser.parse_args(["--devices", "0,1,2", "--jobs", "5"]), tmp_path)
    assert pool.workers == 3 and pool.devices == ("0", "1", "2") and pool.backend == "local"
    pool = pool_from_args(parser.parse_args(["--backend", "submitit", "--submitit", "timeout_min=30"]), tmp_path)
    assert pool.executor == (("timeout_min", 30),) and pool.folder == tmp_path / "submitit"


@pytest.mark.slow
def test_quick_study_through_submitit(tmp_path, capsys):
    pytest.importorskip("submitit")
    from baldro.cli.main import main

    out = tmp_path / "study"
    argv = ["study", "--quick", "--out", str(out), "--backend", "submitit", "--submitit", "cluster=local",
            "--jobs", "2"]
    assert main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["protocol"]["methods"] == ["npo", "npo+dv"] and (out / "report.md").is_file()
    assert list((out / "submitit").glob("*_log.out"))  # the unlearning runs went through submitit
    capsys.readouterr()
    assert main(argv) == 0  # resumed: every stage cached
    assert ": done in" not in capsys.readouterr().err
