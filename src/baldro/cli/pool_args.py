"""``--jobs``, ``--devices``, ``--backend`` and ``--submitit``: where the independent stages of ``baldro demo`` /
``baldro study`` / ``baldro sweep`` run (:class:`baldro.experiments.stages.Pool`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

BACKENDS = ("local", "submitit")


def add_pool_arguments(p: argparse.ArgumentParser, default_jobs: int = 2) -> None:
    p.add_argument("--jobs", type=int, default=default_jobs,
                   help=f"worker processes for independent runs (default: {default_jobs}); with --backend submitit, "
                        "jobs in flight")
    p.add_argument("--devices", default=None,
                   help="GPU ids, e.g. 0,1,2,3: one worker per GPU, each job on a GPU of its own (overrides --jobs)")
    p.add_argument("--backend", choices=BACKENDS, default="local",
                   help="local: worker processes on this machine (default); submitit: one Slurm job per stage chain "
                        "(pip install 'baldro[cluster]')")
    p.add_argument("--submitit", action="append", default=[], metavar="KEY=VALUE",
                   help="a submitit executor parameter (repeatable): cluster=auto|slurm|local, slurm_partition=..., "
                        "gpus_per_node=1, timeout_min=240, ...")


def pool_from_args(args: argparse.Namespace, out: str | Path) -> Any:
    """The :class:`~baldro.experiments.stages.Pool` the arguments describe (ConfigError for a bad value)."""
    from baldro.errors import ConfigError
    from baldro.experiments.stages import Pool
    from baldro.training.config import parse_value

    if args.jobs < 1:
        raise ConfigError(f"--jobs={args.jobs}: give at least 1")
    devices: tuple[str, ...] = ()
    if args.devices:
        devices = tuple(d.strip() for d in str(args.devices).split(",") if d.strip())
        if not devices or not all(d.isdigit() for d in devices) or len(set(devices)) != len(devices):
            raise ConfigError(f"--devices={args.devices}: give distinct GPU ids separated by commas, e.g. 0,1,2,3")
    executor = []
    for item in args.submitit:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--submitit {item!r}: give KEY=VALUE, e.g. --submitit slurm_partition=gpu")
        executor.append((key.strip(), parse_value(value)))
    if executor and args.backend != "submitit":
        raise ConfigError("--submitit parameters need --backend submitit")
    if devices and args.backend != "local":
        raise ConfigError("--devices assigns this machine's GPUs to local workers; with --backend submitit ask the "
                          "scheduler instead (--submitit gpus_per_node=1)")
    return Pool(jobs=args.jobs, devices=devices, backend=args.backend, executor=tuple(executor),
                folder=Path(out) / "submitit" if args.backend == "submitit" else None)
