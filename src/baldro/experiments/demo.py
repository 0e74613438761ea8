"""``baldro demo``: the whole pipeline on the embedded benchmark, offline, on a CPU, each stage cached in one folder.

Stages: benchmark → tiny tokenizer + model → base model (general split) → target (``full``) and retain (``retainNN``)
models → retain / target evaluation (the retain model's ``TOFU_EVAL.json`` is the Forget Quality reference) →
unlearning with each method and seed → their evaluations → ``summary.json`` + ``report.md`` with plots.

The target and retain fine-tunes replay the general split beside ``full`` / ``retainNN``: without it the tiny model
forgets its "pre-training" (real authors, world facts score 0) and Model Utility collapses to 0 for every model, which
no real pretrained model does. Every config comes from :mod:`baldro.experiments.presets` (the ``tiny_*.yaml`` files
are the same configs). A stage whose output folder holds its completion marker is skipped; ``fresh=True`` redoes
everything. Each stage's console output is in its folder's ``stage.log``.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from baldro.data.tofu import partner_splits
from baldro.errors import ConfigError
from baldro.experiments.methods import DEFAULT_METHODS, base_method, method_config
from baldro.experiments.presets import DEMO_ONLY_TRAINING, DemoSettings, finetune_config, unlearn_config
from baldro.experiments.progress import Progress
from baldro.experiments.stages import RESUME_HINT, Job, Pool, Stage, folder_lock, run_jobs, run_stages
from baldro.experiments.step import evaluate_into, unlearn_into, write_run_info
from baldro.reports.readme_tables import VERSIONS_KEY, environment_versions
from baldro.reports.records import RunRecord, load_reference, load_run
from baldro.reports.report import write_report
from baldro.reports.run_summary import build_summary, format_table
from baldro.reports.study_report import append_curves_section, summarize_study

DEMO_INPUTS = "demo_inputs.json"
__all__ = ["DemoSettings", "build_summary", "demo_plan", "format_table", "log", "run_demo"]


def log(message: str) -> None:
    print(f"[baldro demo] {message}", file=sys.stderr, flush=True)


def _finetune(out: Path, config: dict[str, Any]) -> None:
    from baldro.training import run_finetune

    run_finetune({**config, "training": {**config["training"], **DEMO_ONLY_TRAINING}, "output_dir": str(out / "model")})


def _unlearn(out: Path, config: dict[str, Any], curve: dict[str, Any] | None = None) -> None:
    """Stage: the preset's unlearning run (plus the demo-only training keys and, with ``curve``, the curve keys)."""
    unlearn_into(out, {**config, "training": {**config["training"], **DEMO_ONLY_TRAINING}, **(curve or {})})


def curve_keys(settings: DemoSettings, retain_logs: Path) -> dict[str, Any]:
    """What the demo adds to an unlearning run for its curve: evaluate every ``settings.curve_every`` steps against
    the retain model's logs, with the demo's evaluation settings."""
    return {"eval_every": settings.curve_every,
            "eval": {"retain_logs": str(retain_logs), "batch_size": settings.eval_batch,
                     "max_new_tokens": settings.max_new_tokens, "max_length": settings.max_length}}


def _evaluate(out: Path, model: Path, data: Path, forget_split: str, settings: DemoSettings,
              retain_logs: Path | None) -> None:
    evaluate_into(out, model, data, forget_split, retain_logs,
                  {"batch_size": settings.eval_batch, "max_new_tokens": settings.max_new_tokens})


def _write_benchmark(out: Path, settings: DemoSettings) -> None:
    from baldro.data.synth import write_benchmark

    write_benchmark(out, seed=0, authors=settings.authors, questions=settings.questions, uniform=settings.uniform,
                    percents=tuple(settings.percents), own_forget_values=settings.own_forget_values,
                    close_paraphrase=settings.close_paraphrase, own_phrasings=settings.own_phrasings,
                    own_forget_fraction=settings.own_forget_fraction, graded_copies=settings.graded_copies)


def _build_tiny(out: Path, data: Path, settings: DemoSettings) -> None:
    from baldro.modeling.tiny import build_tiny_model

    build_tiny_model(data, out, layers=settings.layers, hidden=settings.hidden, seed=0)


def check_inputs(out: Path, key: dict[str, Any], name: str = DEMO_INPUTS) -> None:
    """Cached stages are only valid for the settings they were built with: refuse a folder built with others."""
    path = out / name
    if path.exists():
        previous = json.loads(path.read_text())
        if previous != key:
            changed = sorted(k for k in set(previous["settings"]) | set(key["settings"])
                             if previous["settings"].get(k) != key["settings"].get(k))
            changed += sorted(k for k in set(previous) | set(key) if k != "settings" and previous.get(k) != key.get(k))
            raise ConfigError(f"{out} holds a demo built with other settings ({', '.join(changed)}); "
                              "pass --fresh to rebuild it or choose another --out")
    else:
        path.write_text(json.dumps(key, indent=1, sort_keys=True) + "\n")


def demo_plan(out: Path, methods: tuple[str, ...], seeds: int, forget_split: str,
              settings: DemoSettings) -> list[list[Job]]:
    """The demo's stages as phases of independent jobs (a phase starts when the previous one is finished). The run
    folder of ``method`` / seed ``k`` is ``out/runs/<method with + as _>/seed<k>``."""
    data, tiny, base = out / "data", out / "tiny", out / "base"
    retain_split = partner_splits(forget_split).retain
    target, retain = out / "target", out / "retain"
    retain_logs = retain / "eval" / "TOFU_EVAL.json"
    phases = [
        [Job([Stage("benchmark", data, _write_benchmark, (settings,)),
              Stage("tiny model", tiny, _build_tiny, (data, settings)),
              Stage("base model (general split)", base, _finetune,
                    (finetune_config(settings, tiny, data, "general", settings.base_epochs, base / "model"),))])],
        [Job([Stage("target model (full + general replay)", target, _finetune,
                    (finetune_config(settings, base / "model", data, ["full", "general"], settings.target_epochs,
                                     target / "model"),))]),
         Job([Stage(f"retain model ({retain_split} + general replay)", retain, _finetune,
                    (finetune_config(settings, base / "model", data, [retain_split, "general"],
                                     settings.target_epochs, retain / "model"),)),
              Stage("evaluate retain model", retain / "eval", _evaluate,
                    (retain / "model", data, forget_split, settings, None))])],
    ]
    jobs = [Job([Stage("evaluate target model", target / "eval", _evaluate,
                       (target / "model", data, forget_split, settings, retain_logs))])]
    for method in methods:
        for seed in range(seeds):
            run_dir = out / "runs" / method.replace("+", "_") / f"seed{seed}"
            config = unlearn_config(settings, method, target / "model", data, forget_split, retain_split,
                                    run_dir / "train" / "model", seed)
            jobs.append(Job([
                Stage(f"unlearn {method} seed {seed}", run_dir / "train", _unlearn,
                      (config, curve_keys(settings, retain_logs))),
                Stage(f"evaluate {method} seed {seed}", run_dir / "eval", _evaluate,
                      (run_dir / "train" / "model", data, forget_split, settings, retain_logs)),
            ]))
    phases.append(jobs)
    return phases


def run_demo(
    out_dir: str | Path = "demo_out",
    methods: tuple[str, ...] = DEFAULT_METHODS,
    seeds: int | None = None,
    forget_split: str = "forget10",
    settings: DemoSettings | None = None,
    fresh: bool = False,
    workers: int | Pool = 2,
) -> dict[str, Any]:
    """Run (or resume) the demo; returns the content of ``summary.json``. ``seeds``: unlearning seeds per method
    (default ``settings.seeds``: 3, 1 for the quick settings). ``workers`` processes run the independent stages
    (target / retain models, then the unlearning runs) side by side."""
    settings = settings or DemoSettings()
    seeds = settings.seeds if seeds is None else seeds
    for m in methods:
        method_config(m)
    if seeds < 1:
        raise ConfigError(f"--seeds={seeds}: need at least one seed")
    out = Path(out_dir)
    with folder_lock(out, take_stale=fresh, stale_hint=RESUME_HINT):  # one run per folder at a time
        return _run_demo_in(out, methods, seeds, forget_split, settings, fresh, workers)


def _run_demo_in(out: Path, methods: tuple[str, ...], seeds: int, forget_split: str, settings: DemoSettings,
                 fresh: bool, workers: int | Pool) -> dict[str, Any]:
    if fresh and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    check_inputs(out, {"settings": settings.cache_key(), "forget_split": forget_split})
    t_start = time.perf_counter()

    phases = demo_plan(out, methods, seeds, forget_split, settings)
    with Progress(sum(len(job.stages) for jobs in phases for job in jobs), prefix="baldro demo") as progress:
        run_stages(phases[0][0].stages, progress)
        for jobs in phases[1:]:
            run_jobs(jobs, workers, progress)
    runs: list[RunRecord] = []
    for method in methods:
        for seed in range(seeds):
            run_dir = out / "runs" / method.replace("+", "_") / f"seed{seed}"
            write_run_info(run_dir, method, seed)
            runs.append(load_run(run_dir))

    reference = {name: load_reference(out / name, name) for name in ("target", "retain")}
    summary = build_summary(runs, reference)
    summary["wall_time_s"] = round(time.perf_counter() - t_start, 1)
    summary["settings"] = settings.cache_key()
    summary["seeds"] = seeds
    summary[VERSIONS_KEY] = environment_versions()  # what --snapshot / --compare record and explain
    folders = {m: [(k, out / "runs" / m.replace("+", "_") / f"seed{k}") for k in range(seeds)] for m in methods}
    bases = {m: base_method(m) for m in methods if base_method(m) != m and base_method(m) in methods}
    summary["matched_utility"] = summarize_study(out, folders, bases)
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    write_report(runs, out, reference, title="baldro demo: unlearning the embedded benchmark",
                 notes=f"forget split `{forget_split}`, {seeds} seed(s), methods: {', '.join(methods)}.")
    append_curves_section(out, summary["matched_utility"], folders)
    return summary
