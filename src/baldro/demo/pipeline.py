"""``baldro demo``: the whole pipeline on the embedded benchmark, offline, on a CPU, each stage cached in one folder.

Stages: benchmark → tiny tokenizer + model → base model (general split) → target (``full``) and retain (``retainNN``)
models → retain / target evaluation (the retain model's ``TOFU_EVAL.json`` is the Forget Quality reference) →
unlearning with each method and seed → their evaluations → ``summary.json`` + ``report.md`` with plots.

The target and retain fine-tunes replay the general split beside ``full`` / ``retainNN``: without it the tiny model
forgets its "pre-training" (real authors, world facts score 0) and Model Utility collapses to 0 for every model, which
no real pretrained model does. A stage whose output folder holds its completion marker is skipped; ``fresh=True``
redoes everything.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import shutil
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from baldro.data.tofu import partner_splits
from baldro.demo.methods import DEFAULT_METHODS, method_config
from baldro.errors import ConfigError
from baldro.reports.records import RunRecord, load_run
from baldro.reports.report import write_report
from baldro.reports.tables import run_metrics
from baldro.runfolder import is_done, mark_done, write_run_info

DEMO_INPUTS = "demo_inputs.json"


@dataclass
class DemoSettings:
    """Sizes and hyper-parameters of the demo (``quick`` shrinks everything to a smoke run)."""

    authors: int = 40
    questions: int = 8
    uniform: bool = False
    layers: int = 2
    hidden: int = 128
    base_epochs: float = 15
    target_epochs: float = 30
    finetune_lr: float = 3e-3
    finetune_batch: int = 32
    unlearn_epochs: float = 5
    unlearn_lr: float = 5e-4
    unlearn_batch: int = 8
    eval_batch: int = 64
    max_new_tokens: int = 48
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def quick(cls) -> DemoSettings:
        return cls(authors=20, questions=4, hidden=64, base_epochs=3, target_epochs=4, unlearn_epochs=1,
                   max_new_tokens=8)


def log(message: str) -> None:
    print(f"[baldro demo] {message}", file=sys.stderr, flush=True)


def _stage(name: str, folder: Path, build: Callable[..., Any], *args: Any) -> Path:
    """Run ``build(folder, *args)`` unless ``folder`` holds the completion marker; then write the marker."""
    if is_done(folder):
        log(f"{name}: cached ({folder})")
        return folder
    if folder.exists():
        shutil.rmtree(folder)
    t0 = time.perf_counter()
    log(f"{name} ...")
    build(folder, *args)
    mark_done(folder)
    log(f"{name}: done in {time.perf_counter() - t0:.1f} s")
    return folder


@dataclass
class Job:
    """One or more stages that run in order in one worker: ``[(name, folder, build, args), ...]``."""

    stages: list[tuple[str, Path, Callable[..., Any], tuple[Any, ...]]]


def _run_job(job: Job) -> None:
    for name, folder, build, args in job.stages:
        _stage(name, folder, build, *args)


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def run_jobs(jobs: list[Job], workers: int) -> None:
    """Run independent jobs, ``workers`` at a time in separate processes (each with cpu_count/workers threads)."""
    pending = [j for j in jobs if not all(is_done(folder) for _, folder, _, _ in j.stages)]
    for job in jobs:
        if job not in pending:
            _run_job(job)
    if workers <= 1 or len(pending) <= 1:
        for job in pending:
            _run_job(job)
        return
    threads = max(1, (os.cpu_count() or 1) // workers)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=(threads,)) as pool:
        for future in [pool.submit(_run_job, job) for job in pending]:
            future.result()


def _training(settings: DemoSettings, epochs: float, lr: float, batch: int, seed: int = 0) -> dict[str, Any]:
    return {
        "num_train_epochs": epochs,
        "learning_rate": lr,
        "per_device_train_batch_size": batch,
        "lr_scheduler_type": "linear",
        "warmup_steps": 0,
        "weight_decay": 0.0,
        "seed": seed,
        "save_strategy": "no",
        "logging_strategy": "no",
        "report_to": "none",
        "disable_tqdm": True,
        "use_cpu": True,
        "dataloader_num_workers": 0,
    }


def _finetune(out: Path, model: Path, data: Path, split: str | list[str], settings: DemoSettings,
              epochs: float) -> None:
    from baldro.training import run_finetune

    run_finetune({
        "model": {"path": str(model)},
        "data": {"source": str(data), "split": split},
        "training": _training(settings, epochs, settings.finetune_lr, settings.finetune_batch),
        "output_dir": str(out / "model"),
    })


def _evaluate(out: Path, model: Path, data: Path, forget_split: str, settings: DemoSettings,
              retain_logs: Path | None) -> None:
    from baldro.evaluation.tofu import evaluate_tofu

    evaluate_tofu(model, data, forget_split=forget_split, retain_logs=retain_logs, out_dir=out,
                  batch_size=settings.eval_batch, max_new_tokens=settings.max_new_tokens, progress=False)


def _unlearn(out: Path, method: str, seed: int, target: Path, data: Path, forget_split: str,
             settings: DemoSettings) -> None:
    from baldro.training import run_unlearn

    cfg = method_config(method)
    cfg.update({
        "model": {"path": str(target)},
        "data": {"source": str(data), "forget_split": forget_split,
                 "retain_split": partner_splits(forget_split).retain},
        "training": _training(settings, settings.unlearn_epochs, settings.unlearn_lr, settings.unlearn_batch, seed),
        "output_dir": str(out / "model"),
        "log_every": 1,
    })
    run_unlearn(cfg)


def _check_inputs(out: Path, key: dict[str, Any]) -> None:
    """Cached stages are only valid for the settings they were built with: refuse a folder built with others."""
    path = out / DEMO_INPUTS
    if path.exists():
        previous = json.loads(path.read_text())
        if previous != key:
            changed = sorted(k for k in set(previous["settings"]) | set(key["settings"])
                             if previous["settings"].get(k) != key["settings"].get(k))
            if previous.get("forget_split") != key["forget_split"]:
                changed.append("forget_split")
            raise ConfigError(f"{out} holds a demo built with other settings ({', '.join(changed)}); "
                              "pass --fresh to rebuild it or choose another --out")
    else:
        path.write_text(json.dumps(key, indent=1, sort_keys=True) + "\n")


def _write_benchmark(out: Path, settings: DemoSettings) -> None:
    from baldro.data.synth import write_benchmark

    write_benchmark(out, seed=0, authors=settings.authors, questions=settings.questions, uniform=settings.uniform)


def _build_tiny(out: Path, data: Path, settings: DemoSettings) -> None:
    from baldro.modeling.tiny import build_tiny_model

    build_tiny_model(data, out, layers=settings.layers, hidden=settings.hidden, seed=0)


def run_demo(
    out_dir: str | Path = "demo_out",
    methods: tuple[str, ...] = DEFAULT_METHODS,
    seeds: int = 1,
    forget_split: str = "forget10",
    settings: DemoSettings | None = None,
    fresh: bool = False,
    workers: int = 2,
) -> dict[str, Any]:
    """Run (or resume) the demo; returns the content of ``summary.json``. ``workers`` processes run the independent
    stages (target / retain models, then the unlearning runs) side by side."""
    settings = settings or DemoSettings()
    for m in methods:
        method_config(m)
    if seeds < 1:
        raise ConfigError(f"--seeds={seeds}: need at least one seed")
    out = Path(out_dir)
    if fresh and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    _check_inputs(out, {"settings": {k: v for k, v in vars(settings).items() if k != "extra"},
                        "forget_split": forget_split})
    t_start = time.perf_counter()

    data = _stage("benchmark", out / "data", _write_benchmark, settings)
    tiny = _stage("tiny model", out / "tiny", _build_tiny, data, settings)
    base = _stage("base model (general split)", out / "base", _finetune, tiny, data, "general", settings,
                  settings.base_epochs)
    retain_split = partner_splits(forget_split).retain
    target, retain = out / "target", out / "retain"
    retain_logs = retain / "eval" / "TOFU_EVAL.json"
    run_jobs([
        Job([("target model (full + general replay)", target, _finetune,
              (base / "model", data, ["full", "general"], settings, settings.target_epochs))]),
        Job([(f"retain model ({retain_split} + general replay)", retain, _finetune,
              (base / "model", data, [retain_split, "general"], settings, settings.target_epochs)),
             ("evaluate retain model", retain / "eval", _evaluate, (retain / "model", data, forget_split, settings,
                                                                     None))]),
    ], workers)
    jobs = [Job([("evaluate target model", target / "eval", _evaluate,
                  (target / "model", data, forget_split, settings, retain_logs))])]
    run_dirs: list[tuple[str, int, Path]] = []
    for method in methods:
        for seed in range(seeds):
            run_dir = out / "runs" / method.replace("+", "_") / f"seed{seed}"
            run_dirs.append((method, seed, run_dir))
            jobs.append(Job([
                (f"unlearn {method} seed {seed}", run_dir / "train", _unlearn,
                 (method, seed, target / "model", data, forget_split, settings)),
                (f"evaluate {method} seed {seed}", run_dir / "eval", _evaluate,
                 (run_dir / "train" / "model", data, forget_split, settings, retain_logs)),
            ]))
    run_jobs(jobs, workers)
    runs: list[RunRecord] = []
    for method, seed, run_dir in run_dirs:
        write_run_info(run_dir, method=method, seed=seed)
        runs.append(load_run(run_dir))

    reference = {"target": _reference(out / "target", "target"), "retain": _reference(out / "retain", "retain")}
    summary = build_summary(runs, reference)
    summary["wall_time_s"] = round(time.perf_counter() - t_start, 1)
    summary["settings"] = {k: v for k, v in vars(settings).items() if k != "extra"}
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    write_report(runs, out, reference, title="baldro demo: unlearning the embedded benchmark",
                 notes=f"forget split `{forget_split}`, {seeds} seed(s), methods: {', '.join(methods)}.")
    return summary


def _reference(folder: Path, name: str) -> RunRecord:
    record = load_run(folder)
    record.method = name
    return record


def _finite(x: float) -> float | None:
    return None if math.isnan(x) else x


HEADLINE = ("forget_quality", "model_utility", "forget_truth_ratio", "privleak", "final_loss_iqr", "final_nll_iqr")
PER_SAMPLE = ("final_loss_iqr", "final_nll_iqr")


def build_summary(runs: list[RunRecord], reference: dict[str, RunRecord]) -> dict[str, Any]:
    """``{"methods": {name: {metric: mean, "seeds": [...], "model_dir": ...}}, "target": {...}, "retain": {...}}``."""
    methods: dict[str, Any] = {}
    for record in runs:
        entry = methods.setdefault(record.method, {"seeds": [], "model_dirs": []})
        metrics = run_metrics(record)
        entry["seeds"].append({"seed": record.seed, **{k: _finite(metrics[k]) for k in HEADLINE}})
        entry["model_dirs"].append(str(record.folder / "train" / "model"))
    for entry in methods.values():
        for key in HEADLINE:
            values = [s[key] for s in entry["seeds"] if s[key] is not None]
            entry[key] = sum(values) / len(values) if values else None
        entry["model_dir"] = entry["model_dirs"][0]
    out: dict[str, Any] = {"methods": methods}
    for name, record in reference.items():
        metrics = run_metrics(record)
        out[name] = {k: _finite(metrics[k]) for k in HEADLINE if k not in PER_SAMPLE}
        out[name]["model_dir"] = str(record.folder / "model")
    return out


def format_table(summary: dict[str, Any]) -> str:
    """The terminal table: one row per method plus the target and retain models."""
    cols = ("forget_quality", "model_utility", "forget_truth_ratio", "final_loss_iqr", "final_nll_iqr")
    lines = [f"{'model':<22}" + "".join(f"{c:>20}" for c in cols)]
    rows = [(name, entry) for name, entry in summary["methods"].items()]
    rows += [(name, summary[name]) for name in ("target", "retain") if name in summary]
    for name, entry in rows:
        cells = "".join(f"{'n/a' if entry.get(c) is None else format(entry[c], '.4g'):>20}" for c in cols)
        lines.append(f"{name:<22}{cells}")
    return "\n".join(lines)
