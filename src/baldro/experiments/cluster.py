"""Study / demo jobs on a cluster through submitit (Slurm), or through submitit's local executor.

Why submitit and not Ray: the jobs here are independent, minutes-to-hours training runs whose results are folders on
disk (each stage cached by its completion marker, so a resubmitted study skips what is done) — a batch workload, not
a task graph that passes objects between workers. submitit submits each job as a Slurm job (the scheduler most GPU
clusters for research run; ``gpus_per_node=1`` gives every job a GPU of its own), needs no service running (Ray needs a
cluster head and a ``ray`` runtime on every node, and its ``num_gpus`` scheduling only helps inside a Ray cluster),
and is a small pure-Python package (Ray's wheel is hundreds of MB and starts several daemons, even on a laptop).
Its local executor runs the same pickled jobs as subprocesses, which is how the tests run a study through it.

``pip install 'baldro[cluster]'`` (submitit). Parameters are submitit's ``update_parameters`` keys, e.g.
``--submitit cluster=slurm --submitit slurm_partition=gpu --submitit gpus_per_node=1 --submitit timeout_min=240``
(``cluster``: ``auto`` — Slurm where ``sbatch`` exists, else local —, ``slurm`` or ``local``; ``timeout_min``
defaults to 12 hours, not submitit's 5 minutes).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from baldro.errors import BaldroError, ConfigError

if TYPE_CHECKING:
    from baldro.experiments.progress import Progress
    from baldro.experiments.stages import Job, Pool

POLL_S = 1.0
# submitit's own default is 5 minutes (then it signals the job and, not checkpointable, ends it): far too short for
# a training run; a Slurm partition with a lower limit needs --submitit timeout_min=... anyway
DEFAULT_TIMEOUT_MIN = 12 * 60


class JobFailedError(BaldroError):
    """A job submitted through submitit failed; the message names its stage and the log to read."""


def collect_job(job: Job) -> list[dict[str, Any]]:
    """Run a job's stages in this (submitted) process; return their progress events for the submitting process."""
    from baldro.experiments.stages import run_stage

    events: list[dict[str, Any]] = []
    for stage in job.stages:
        run_stage(stage, events.append)
    return events


def executor_for(pool: Pool) -> Any:
    """A submitit executor for ``pool`` (ConfigError when submitit is missing or a parameter is unknown)."""
    try:
        import submitit
    except ImportError as err:
        raise ConfigError("--backend submitit needs submitit: pip install 'baldro[cluster]' (or pip install submitit)"
                          ) from err
    params = {"timeout_min": DEFAULT_TIMEOUT_MIN, **dict(pool.executor)}
    cluster = str(params.pop("cluster", "auto"))
    if cluster not in ("auto", "slurm", "local"):
        raise ConfigError(f"--submitit cluster={cluster}: use auto, slurm or local")
    folder = pool.folder or "submitit"
    executor = submitit.AutoExecutor(folder=folder, cluster=None if cluster == "auto" else cluster)
    try:
        executor.update_parameters(**params)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"--submitit: {err}") from err
    return executor


def _failed_event(job: Job, seconds: float, error: BaseException) -> dict[str, Any]:
    stage = next((s for s in job.stages if not s.done), job.stages[-1])
    log = stage.folder.parent / f".{stage.folder.name}.log"
    return {"name": stage.name, "status": "failed", "seconds": seconds, "log": str(log), "error": str(error)[-500:]}


def run_submitit(jobs: list[Job], pool: Pool, progress: Progress) -> None:
    """Submit ``jobs``, at most ``pool.jobs`` in flight; report each stage's events as its job finishes; raise
    :class:`JobFailedError` for the first failed job once every submitted job has ended."""
    executor = executor_for(pool)
    queue = list(jobs)
    running: dict[Any, tuple[Job, float]] = {}
    failures: list[dict[str, Any]] = []
    while queue or running:
        while queue and len(running) < max(1, pool.jobs):
            job = queue.pop(0)
            progress({"name": job.stages[0].name, "status": "started"})
            running[executor.submit(collect_job, job)] = (job, time.perf_counter())
        for handle in [h for h in running if h.done()]:
            job, start = running.pop(handle)
            try:
                events = handle.result()
            except Exception as err:  # submitit re-raises the job's error (FailedJobException) here
                failures.append(_failed_event(job, time.perf_counter() - start, err))
                progress(failures[-1])
                continue
            for event in events:
                if not (event["status"] == "started" and event["name"] == job.stages[0].name):
                    progress(event)
        if running:
            time.sleep(POLL_S)
    if failures:
        first = failures[0]
        raise JobFailedError(f"{first['name']} failed in its submitit job; its output: {first['log']} "
                             f"(submitit's logs: {pool.folder or 'submitit'})")
