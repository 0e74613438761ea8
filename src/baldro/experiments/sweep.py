"""``baldro sweep``: a cartesian grid of ``baldro unlearn`` + ``baldro eval tofu`` runs, resumable.

Each grid point × seed is an ordinary run folder ``<out>/<point>/seed<k>/`` (``train/model`` + ``eval``); a point
whose ``eval/TOFU_SUMMARY.json`` exists is skipped, so an interrupted sweep resumes where it stopped. The points run
as the study's stages do (:mod:`baldro.experiments.stages`): ``--jobs`` at a time, one per GPU (``--devices``) or
through submitit (``--backend submitit``). Results:
``results.csv``, ``results.md`` and ``fq_vs_mu.png``.
"""

from __future__ import annotations

import csv
import itertools
import json
import re
from pathlib import Path
from typing import Any

from baldro.errors import ConfigError
from baldro.experiments.progress import Progress
from baldro.experiments.stages import Job, Pool, Stage, run_jobs
from baldro.experiments.step import unlearn_then_evaluate
from baldro.reports.plots import fq_mu_plot
from baldro.reports.records import RunRecord, load_run
from baldro.reports.tables import markdown_table, method_table, run_metrics


def parse_grid(specs: list[str]) -> list[tuple[str, list[str]]]:
    """``key=v1,v2,...`` strings → [(key, [values])] in the given order."""
    grid = []
    for spec in specs:
        key, sep, values = spec.partition("=")
        if not sep or not key.strip() or not values.strip():
            raise ConfigError(f"--grid {spec!r}: expected key=value1,value2,... (e.g. aggregator.beta=0.5,1,2)")
        grid.append((key.strip(), [v.strip() for v in values.split(",") if v.strip()]))
    return grid


def point_name(assignment: list[tuple[str, str]]) -> str:
    text = "__".join(f"{k}={v}" for k, v in assignment) or "base"
    return re.sub(r"[^A-Za-z0-9_.=+-]", "_", text)


def grid_points(grid: list[tuple[str, list[str]]]) -> list[list[tuple[str, str]]]:
    keys = [k for k, _ in grid]
    return [list(zip(keys, combo)) for combo in itertools.product(*(vals for _, vals in grid))]


def _sweep_point(folder: Path, config: dict[str, Any], name: str, seed: int, retain_logs: str | Path | None,
                 eval_options: dict[str, Any] | None) -> None:
    """A grid point × seed as a stage: unlearn, evaluate, label (:func:`unlearn_then_evaluate`) into ``folder``."""
    unlearn_then_evaluate(config, folder, name, seed, retain_logs, eval_options)


def run_sweep(
    base_config: dict[str, Any],
    grid: list[tuple[str, list[str]]],
    out_dir: str | Path,
    seeds: int = 1,
    retain_logs: str | Path | None = None,
    eval_options: dict[str, Any] | None = None,
    workers: int | Pool = 1,
) -> list[RunRecord]:
    """Run every grid point × seed that has no finished evaluation yet — ``workers`` at a time, or as a
    :class:`~baldro.experiments.stages.Pool` says (one GPU per worker, submitit) — then write the result tables and
    plot. Each run's output goes to its folder's ``stage.log``; the console shows one progress line."""
    from baldro.training.config import apply_overrides

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = base_config.get("data") or {}
    if not data.get("source"):
        raise ConfigError("the sweep's base config needs data.source (the benchmark folder or hub id)")
    runs, jobs = [], []
    for assignment in grid_points(grid):
        name = point_name(assignment)
        for seed in range(seeds):
            run_dir = out / name / f"seed{seed}"
            runs.append(run_dir)
            if not (run_dir / "eval" / "TOFU_SUMMARY.json").exists():
                overrides = [f"{k}={v}" for k, v in assignment] + [f"training.seed={seed}", "overwrite=true"]
                cfg = apply_overrides(json.loads(json.dumps(base_config)), overrides)
                args = (cfg, name, seed, retain_logs, eval_options)
                jobs.append(Job([Stage(f"{name} seed {seed}", run_dir, _sweep_point, args)]))
    if jobs:
        with Progress(len(jobs), prefix="baldro sweep") as progress:
            run_jobs(jobs, workers, progress)
    records = [load_run(run_dir) for run_dir in runs]
    write_results(records, out)
    return records


def write_results(records: list[RunRecord], out: Path) -> None:
    with (out / "results.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        metrics = list(run_metrics(records[0])) if records else []
        writer.writerow(["point", "seed", *metrics])
        for r in records:
            writer.writerow([r.method, r.seed, *run_metrics(r).values()])
    (out / "results.md").write_text(markdown_table(method_table(records)) + "\n")
    fq_mu_plot(records, out / "fq_vs_mu.png")
