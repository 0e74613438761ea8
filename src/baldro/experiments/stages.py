"""The stage runner shared by the demo and the study: cached stages, worker processes, one progress display.

Jobs run in a :class:`Pool`: local worker processes (optionally one GPU each), or submitit (Slurm, or its local
executor; :mod:`baldro.experiments.cluster`).

A stage is ``build(folder, *args)``; it is skipped when ``folder`` holds the completion marker. Everything a stage
prints (Hugging Face bars, the Trainer's ``{'loss': ...}`` dicts, warnings) goes to ``<folder>/stage.log``, at the
file-descriptor level so that C extensions and already-configured logging handlers are caught too. Stages report
``started`` / ``done`` / ``cached`` / ``failed`` events (from workers through a queue) to the main process, whose
:class:`~baldro.experiments.progress.Progress` shows one line over all stages (rewritten in place on a terminal,
whole lines otherwise).
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import queue
import shutil
import signal
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, wait
from contextlib import contextmanager, redirect_stderr, redirect_stdout, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from baldro.experiments.progress import Progress
from baldro.runfolder import is_done, mark_done
from baldro.runfolder.lock import FolderLock

STAGE_LOG = "stage.log"


@dataclass
class Stage:
    """``build(folder, *args)`` writes the stage's output into ``folder`` (a picklable module-level function)."""

    name: str
    folder: Path
    build: Callable[..., Any]
    args: tuple[Any, ...] = ()

    @property
    def done(self) -> bool:
        return is_done(self.folder)


@dataclass
class Job:
    """Stages that run in order in one worker."""

    stages: list[Stage]


_SINK: Callable[[dict[str, Any]], Any] | None = None  # a worker's queue.put; None in the main process


@contextmanager
def captured_output(log_path: Path) -> Iterator[None]:
    """Send stdout and stderr (Python objects and file descriptors 1, 2) to ``log_path`` for the block."""
    sys.stdout.flush()
    sys.stderr.flush()
    with log_path.open("a") as fh:
        saved = os.dup(1), os.dup(2)
        try:
            os.dup2(fh.fileno(), 1)
            os.dup2(fh.fileno(), 2)
            with redirect_stdout(fh), redirect_stderr(fh):
                yield
        finally:
            fh.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


RESUME_HINT = "pass --fresh to start again, or delete the lock file to continue from the cached stages"


@contextmanager
def folder_lock(folder: Path, take_stale: bool = True, stale_hint: str = "") -> Iterator[FolderLock]:
    """Hold ``folder``'s lock (:class:`~baldro.runfolder.lock.FolderLock`) so that no other process builds it at the
    same time (:class:`~baldro.errors.ConfigError` naming the holder otherwise). A lock file left by a killed process
    is taken over silently with ``take_stale`` (a stage: an unfinished one is rebuilt from scratch), otherwise refused
    with ``stale_hint`` (a demo / study folder: the user says whether to resume)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lock = FolderLock(folder, take_stale=take_stale, stale_hint=stale_hint).acquire()
    try:
        yield lock
    finally:
        lock.release()


def run_stage(stage: Stage, report: Callable[[dict[str, Any]], Any]) -> None:
    """Run one stage unless it is cached, holding its folder's lock; its output goes to ``<folder>/stage.log``
    (``.<folder>.log`` beside the folder while it runs or when it failed)."""
    with folder_lock(stage.folder):
        _run_stage(stage, report)


def _run_stage(stage: Stage, report: Callable[[dict[str, Any]], Any]) -> None:
    if stage.done:
        report({"name": stage.name, "status": "cached"})
        return
    if stage.folder.exists():
        shutil.rmtree(stage.folder)
    stage.folder.parent.mkdir(parents=True, exist_ok=True)
    log = stage.folder.parent / f".{stage.folder.name}.log"
    log.unlink(missing_ok=True)
    report({"name": stage.name, "status": "started"})
    t0 = time.perf_counter()
    try:
        with captured_output(log):
            stage.build(stage.folder, *stage.args)
    except BaseException:
        report({"name": stage.name, "status": "failed", "seconds": time.perf_counter() - t0, "log": str(log)})
        raise
    stage.folder.mkdir(parents=True, exist_ok=True)
    log.replace(stage.folder / STAGE_LOG)
    mark_done(stage.folder)
    report({"name": stage.name, "status": "done", "seconds": time.perf_counter() - t0})


def _run_job(job: Job, report: Callable[[dict[str, Any]], Any] | None = None) -> None:
    for stage in job.stages:
        run_stage(stage, report or _SINK or (lambda event: None))


def _die_with_parent() -> None:
    """Linux: have the kernel send SIGTERM to this worker when the process that started it dies (``kill`` of the
    demo / study leaves no worker building stages that a resumed run would build again)."""
    if sys.platform.startswith("linux"):
        with suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG


def _init_worker(threads: int, events: Any, devices: Any = None) -> None:
    global _SINK
    _die_with_parent()
    if devices is not None:  # one GPU per worker, before anything in this process can initialise CUDA
        os.environ["CUDA_VISIBLE_DEVICES"] = devices.get(timeout=60)
    import torch

    torch.set_num_threads(threads)
    _SINK = events.put


@dataclass(frozen=True)
class Pool:
    """Where independent jobs run.

    ``backend="local"`` (the default): ``jobs`` worker processes on this machine; with ``devices`` (GPU ids) one
    worker per device, each seeing only its own (``CUDA_VISIBLE_DEVICES``), so every job gets a GPU to itself.
    ``backend="submitit"``: each job is submitted through submitit (:mod:`baldro.experiments.cluster`) — to Slurm,
    or to submitit's local executor — with ``executor`` as its parameters, at most ``jobs`` at a time; ``folder``
    holds submitit's job files and logs."""

    jobs: int = 2
    devices: tuple[str, ...] = ()
    backend: str = "local"
    executor: tuple[tuple[str, Any], ...] = ()
    folder: Path | None = None

    @property
    def workers(self) -> int:
        return len(self.devices) if self.devices else self.jobs


def run_jobs(jobs: list[Job], workers: int | Pool, progress: Progress | None = None) -> None:
    """Run independent jobs, ``workers`` at a time in separate processes (each with cpu_count/workers threads; a
    :class:`Pool` also says on which devices or through which backend); the main process prints every stage's line
    as it finishes."""
    pool = workers if isinstance(workers, Pool) else Pool(jobs=workers)
    progress = progress or Progress(sum(len(j.stages) for j in jobs))
    pending = [j for j in jobs if not all(s.done for s in j.stages)]
    for job in jobs:
        if job not in pending:
            _run_job(job, progress)
    if pool.backend == "submitit" and pending:
        from baldro.experiments.cluster import run_submitit

        run_submitit(pending, pool, progress)
        return
    if (pool.workers <= 1 or len(pending) <= 1) and not pool.devices:
        for job in pending:
            _run_job(job, progress)
        return
    if not pending:
        return
    workers = pool.workers
    threads = max(1, (os.cpu_count() or 1) // workers)
    context = multiprocessing.get_context("spawn")
    events = context.Queue()
    devices = None
    if pool.devices:
        devices = context.Queue()
        for device in pool.devices:
            devices.put(str(device))

    expected, received = sum(len(j.stages) for j in pending), 0  # stage ends: done, cached or failed

    def drain(timeout: float) -> None:
        nonlocal received
        try:
            while received < expected:
                event = events.get(timeout=timeout)
                progress(event)
                received, timeout = received + (event["status"] != "started"), 0.0
        except queue.Empty:
            pass

    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                             initargs=(threads, events, devices)) as executor:
        futures = [executor.submit(_run_job, job) for job in pending]
        while wait(futures, timeout=0)[1]:
            drain(0.2)
        drain(2.0)  # the last lines can trail the futures (the queue's feeder thread)
        for future in futures:
            future.result()


def run_stages(stages: list[Stage], progress: Progress) -> None:
    """Run stages one after the other in this process."""
    for stage in stages:
        run_stage(stage, progress)
