"""Reading run folders: a run = one unlearned model with its evaluation summary and per-sample training log.

A run folder holds ``TOFU_SUMMARY.json`` (or ``MUSE_SUMMARY.json``), directly or under ``eval/``, and optionally
``per_sample.jsonl`` (written by ``baldro unlearn``) and ``run_info.json`` (``{"method": ..., "seed": ...}``), each
directly or under ``eval/``, ``model/``, ``train/`` or ``train/model/`` (the demo's and the sweep's layout).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from baldro.errors import DataError
from baldro.readback import read_jsonl
from baldro.runfolder import RUN_INFO, read_run_info

SUMMARY_FILES = ("TOFU_SUMMARY.json", "MUSE_SUMMARY.json")


@dataclass
class RunRecord:
    method: str
    seed: int | None
    summary: dict[str, Any]
    folder: Path
    per_sample_path: Path | None = None
    benchmark: str = "tofu"  # from the summary file's name: TOFU_SUMMARY.json or MUSE_SUMMARY.json

    def metric(self, name: str) -> float:
        value = self.summary.get(name)
        return float(value) if isinstance(value, int | float) else math.nan


def _find(folder: Path, names: tuple[str, ...]) -> Path | None:
    for sub in (folder, folder / "eval", folder / "model", folder / "train", folder / "train" / "model"):
        for name in names:
            if (sub / name).is_file():
                return sub / name
    return None


def load_run(folder: str | Path) -> RunRecord:
    """Load one run folder; errors name the folder and the file that is missing."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder; give a run folder (or a demo / sweep folder) that exists")
    summary_path = _find(folder, SUMMARY_FILES)
    if summary_path is None:
        raise DataError(f"{folder}: no TOFU_SUMMARY.json or MUSE_SUMMARY.json (looked in the folder and eval/); "
                        "evaluate the run first with `baldro eval tofu --model ... --out <run>/eval`")
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{summary_path}: not valid JSON ({err}); evaluate the run again") from err
    if not isinstance(summary, dict):
        raise DataError(f"{summary_path}: must be a JSON object of metric names to values; evaluate the run again")
    info_path = _find(folder, (RUN_INFO,))
    info = read_run_info(info_path.parent) if info_path else {}
    return RunRecord(
        method=str(info.get("method", folder.name)),
        seed=info.get("seed"),
        summary=summary,
        folder=folder,
        per_sample_path=_find(folder, ("per_sample.jsonl",)),
        benchmark=summary_path.name.split("_", 1)[0].lower(),
    )


def check_one_benchmark(records: list[RunRecord]) -> str:
    """The benchmark all ``records`` were evaluated on; DataError naming the runs of each when they differ (one
    table across benchmarks would compare numbers that mean different things, e.g. PrivLeak on TOFU and MUSE)."""
    by_benchmark: dict[str, list[str]] = {}
    for record in records:
        by_benchmark.setdefault(record.benchmark, []).append(str(record.folder))
    if len(by_benchmark) > 1:
        listed = "; ".join(f"{b.upper()}: {', '.join(runs[:3])}{' ...' if len(runs) > 3 else ''}"
                           for b, runs in sorted(by_benchmark.items()))
        raise DataError(f"the runs were evaluated on different benchmarks ({listed}); report each benchmark's runs "
                        "separately")
    return next(iter(by_benchmark), "tofu")


def load_reference(folder: str | Path, name: str) -> RunRecord:
    """A reference model's run (``target`` / ``retain``). The retain model's Forget Quality is 1 by construction (the
    KS test of its truth ratios against themselves): it is set so, so that tables and plots show the same value."""
    record = load_run(folder)
    record.method = name
    if name == "retain" and math.isnan(record.metric("forget_quality")):
        record.summary = {**record.summary, "forget_quality": 1.0}
    return record


def read_per_sample(path: Path) -> list[dict[str, Any]]:
    """Rows of a ``per_sample.jsonl`` log; a damaged one (a line cut off or not JSON) is a DataError naming the line."""
    rows, _ = read_jsonl(path)
    return rows


def read_trajectory(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a ``trajectory.jsonl`` (``baldro unlearn --set eval_every=N``); a bad line names the file and line."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such trajectory file; run `baldro unlearn` with --set eval_every=N")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{path} line {number}: not valid JSON ({err.msg}); re-run the evaluation") from err
        if not isinstance(row, dict) or not isinstance(row.get("step"), int):
            raise DataError(f"{path} line {number}: field 'step' (an integer) is missing")
        rows.append(row)
    return rows
