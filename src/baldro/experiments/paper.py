"""``baldro paper``: run any selection of the paper's experiments end to end, resumable, and set ours beside the paper's.

Each experiment (:mod:`baldro.experiments.paper_presets`) is the grid its released script loops over; every grid point
is one cached stage of the study's stage runner (:mod:`baldro.experiments.stages`): unlearning with the released
settings, evaluated as the released code does — TOFU after every epoch (``eval_every: epoch``, the unlearning curve
of :mod:`baldro.evaluation.trajectory`), MUSE after training — against the retain model's evaluation (a published
``*_EVAL.json`` given with ``--retain-logs``, or the retain model, evaluated once and cached). An interrupted run
resumes at the first unfinished point (a point that was running starts again).

Model, tokenizer, data and retain paths are arguments (:class:`PaperPaths`, with ``{forget_split}``,
``{retain_split}``, ``{corpus}`` … placeholders), and ``overrides`` pin any config key in every point, so the same
command runs the real experiment on a GPU and a miniature on a CPU. What a machine cannot run (paged AdamW without
bitsandbytes, flash attention without flash-attn, bf16 on a CPU) is substituted and recorded (:func:`fit_to_machine`).

The result of an experiment is its best evaluation over grid points and epochs (step 0, the model before
unlearning, excluded): TOFU the highest Forget Quality, ties broken by Model Utility; MUSE the PrivLeak closest to 0
(MUSE's "like the retrained model"), ties broken by KnowMem on the retain set. The released code selects nothing (it
logs every epoch) and no rule could be read from the paper; ``results.csv`` holds every evaluation for another rule.
Writes ``results.csv``, ``summary.json`` and ``paper_table.md`` (the paper's layout, its values beside ours).
"""

from __future__ import annotations

import copy
import csv
import importlib.util
import json
import math
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from baldro.errors import ConfigError
from baldro.experiments.paper_presets import EVAL_DEFAULTS, Experiment, get_key, grid_points, placeholders
from baldro.experiments.progress import Progress
from baldro.experiments.stages import Job, Stage, folder_lock, run_jobs, run_stages

POINT_FILE = "point.json"  # what a cached stage was built from: a point's config and evaluation, a model's evaluation
SELECTION = {
    "tofu": "highest Forget Quality over grid points and epochs (step 0 excluded), ties: highest Model Utility",
    "muse": "PrivLeak closest to 0 over grid points, ties: highest KnowMem on the retain set",
}
RESUME_HINT = "pass --fresh to start again, or delete the lock file to continue from the finished points"


@dataclass(frozen=True)
class PaperPaths:
    """What replaces the presets' hub ids (``None``: keep the preset's). Each may hold ``{forget_split}``,
    ``{retain_split}``, ``{holdout_split}``, ``{corpus}``, ``{split}``, ``{benchmark}``. ``retain_logs``: the retain
    model's ``TOFU_EVAL.json`` / ``MUSE_EVAL.json``; without it ``retain_model`` (default: the experiment's, e.g.
    open-unlearning/tofu_Llama-2-7b-chat-hf_retain99) is evaluated once per split."""

    model: str | None = None
    tokenizer: str | None = None
    data: str | None = None
    retain_logs: str | None = None
    retain_model: str | None = None


@dataclass(frozen=True)
class Machine:
    """What this machine can run: a CUDA GPU, bitsandbytes (paged AdamW), flash-attn."""

    cuda: bool
    bitsandbytes: bool
    flash_attn: bool

    @classmethod
    def detect(cls) -> Machine:
        import torch

        def has(name: str) -> bool:
            return importlib.util.find_spec(name) is not None

        return cls(torch.cuda.is_available(), has("bitsandbytes"), has("flash_attn"))


def fit_to_machine(config: dict[str, Any], machine: Machine) -> tuple[dict[str, Any], list[str]]:
    """``config`` with what ``machine`` cannot run replaced, and one line per replacement."""
    config = copy.deepcopy(config)
    notes: list[str] = []
    training, model = config.setdefault("training", {}), config.setdefault("model", {})
    if training.get("optim", "").startswith("paged_") and not (machine.cuda and machine.bitsandbytes):
        notes.append(f"training.optim {training['optim']} → adamw_torch (paged AdamW needs bitsandbytes and a GPU; "
                     "the same AdamW update)")
        training["optim"] = "adamw_torch"
    if model.get("attn_implementation") == "flash_attention_2" and not (machine.cuda and machine.flash_attn):
        notes.append("model.attn_implementation flash_attention_2 → sdpa (flash-attn needs its package and a GPU)")
        model["attn_implementation"] = "sdpa"
    if not machine.cuda:
        if training.get("bf16"):
            notes.append("training.bf16 true → false (no GPU)")
            training["bf16"] = False
        if model.get("dtype") not in (None, "float32"):
            notes.append(f"model.dtype {model['dtype']} → float32 (no GPU)")
            model["dtype"] = "float32"
        training["use_cpu"] = True
    return config, notes


def _fill(template: str, exp: Experiment) -> str:
    try:
        return template.format(**placeholders(exp.benchmark, exp.split))
    except (KeyError, IndexError) as err:
        raise ConfigError(f"path {template!r}: unknown placeholder {err}; use {{forget_split}}, {{retain_split}}, "
                          "{holdout_split}, {corpus}, {split} or {benchmark}") from None


def point_config(exp: Experiment, config: dict[str, Any], paths: PaperPaths) -> dict[str, Any]:
    """A grid point's config with ``paths`` in place (``--model`` without ``--tokenizer``: the model's tokenizer)."""
    config = copy.deepcopy(config)
    if paths.model:
        config["model"]["path"] = _fill(paths.model, exp)
        config["model"].pop("tokenizer", None)
    if paths.tokenizer:
        config["model"]["tokenizer"] = _fill(paths.tokenizer, exp)
    if paths.data:
        config["data"]["source"] = _fill(paths.data, exp)
    return config


@dataclass
class Plan:
    """The stages of a selection and where their results are."""

    retain: list[Stage]
    runs: list[Stage]
    points: dict[str, list[tuple[str, Path, dict[str, Any]]]]  # experiment → [(point, stage folder, run config)]
    retain_logs: dict[str, Path]  # experiment → the retain model's *_EVAL.json
    originals: dict[str, Path]  # MUSE experiment → the target model's evaluation folder
    substitutions: list[str]


def _retain_key(exp: Experiment) -> str:
    return f"{exp.benchmark}_{exp.split.lower()}"


def plan(out: Path, experiments: list[Experiment], paths: PaperPaths, overrides: dict[str, Any],
         eval_options: dict[str, Any], machine: Machine) -> Plan:
    """Every stage of the selection. Each point's config is resolved and checked (``parse_unlearn``: defaults
    filled in, every key and value checked) before any work; a finished point is reused only for the same config."""
    from baldro.training.unlearn import parse_unlearn

    stages: dict[str, Stage] = {}
    runs: dict[Path, Stage] = {}
    result = Plan([], [], {}, {}, {}, [])
    for exp in experiments:
        key = _retain_key(exp)
        retain_logs = _retain_logs_path(out, exp, paths)
        evaluation = _evaluation(exp, retain_logs, eval_options)
        result.points[exp.name] = []
        for name, raw in grid_points(exp, overrides):
            config, notes = fit_to_machine(point_config(exp, raw, paths), machine)
            result.substitutions += [n for n in notes if n not in result.substitutions]
            folder = out / "runs" / exp.runs / name
            if exp.benchmark == "tofu":
                config = _with_curve(config, evaluation)
            config = parse_unlearn({**config, "output_dir": str(folder / "train" / "model")}).raw
            _check_cached(folder, {"config": config, "evaluation": evaluation})
            result.points[exp.name].append((name, folder, config))
            if folder not in runs:
                runs[folder] = Stage(f"{exp.runs} {name}", folder, run_point, (exp.benchmark, config, evaluation))
        first = result.points[exp.name][0][2]
        result.retain_logs[exp.name] = retain_logs
        if paths.retain_logs is None and f"retain {key}" not in stages:
            model = _fill(paths.retain_model or exp.retain_model, exp)
            stages[f"retain {key}"] = _model_stage(f"evaluate retain model {key}", out / "retain" / key, exp, model,
                                                   first, {**evaluation, "retain_logs": None})
        if exp.benchmark == "muse":
            result.originals[exp.name] = out / "original" / key
            if f"original {key}" not in stages:
                stages[f"original {key}"] = _model_stage(f"evaluate target model {key}", out / "original" / key, exp,
                                                         first["model"]["path"], first, evaluation)
    result.retain = sorted(stages.values(), key=lambda st: not st.name.startswith("evaluate retain"))
    result.runs = list(runs.values())
    return result


def _model_stage(name: str, folder: Path, exp: Experiment, model: str, config: dict[str, Any],
                 evaluation: dict[str, Any]) -> Stage:
    """A stage evaluating a reference model as the points of ``config`` are evaluated (cached for the same inputs)."""
    _check_cached(folder, _model_inputs(model, config, evaluation))
    return Stage(name, folder, evaluate_model, (exp.benchmark, model, config, evaluation))


def _model_inputs(model: str, config: dict[str, Any], evaluation: dict[str, Any]) -> dict[str, Any]:
    return {"model": model, "tokenizer": config["model"].get("tokenizer"), "data": config["data"],
            "evaluation": evaluation}


def _retain_logs_path(out: Path, exp: Experiment, paths: PaperPaths) -> Path:
    if paths.retain_logs is not None:
        path = Path(_fill(paths.retain_logs, exp)).expanduser()
        if not path.is_file():
            raise ConfigError(f"--retain-logs {path}: no such file; give the retain model's "
                              f"{exp.benchmark.upper()}_EVAL.json (placeholders such as {{retain_split}} allowed)")
        return path
    return out / "retain" / _retain_key(exp) / f"{exp.benchmark.upper()}_EVAL.json"


def _evaluation(exp: Experiment, retain_logs: Path, eval_options: dict[str, Any]) -> dict[str, Any]:
    """How the points of ``exp`` are evaluated: the retain logs, generation length, batch size, first items."""
    defaults = {"batch_size": EVAL_DEFAULTS["batch_size"], "max_new_tokens": EVAL_DEFAULTS["max_new_tokens"]} \
        if exp.benchmark == "tofu" else {}
    chosen = {k: v for k, v in eval_options.items() if v is not None}
    return {"retain_logs": str(retain_logs), **defaults, **chosen}


def _with_curve(config: dict[str, Any], evaluation: dict[str, Any]) -> dict[str, Any]:
    """TOFU: the curve keys (evaluated every epoch, as the preset says, against the retain logs)."""
    config = copy.deepcopy(config)
    config["eval"] = {**config.get("eval", {}), "retain_logs": evaluation["retain_logs"],
                      **{k: evaluation[k] for k in ("batch_size", "max_new_tokens") if k in evaluation}}
    if evaluation.get("max_items") is not None:
        config["eval_max_items"] = evaluation["max_items"]
    return config


def _check_cached(folder: Path, inputs: dict[str, Any]) -> None:
    """A finished stage is reused only for the inputs it was built with."""
    stored = folder / POINT_FILE
    if stored.is_file() and json.loads(stored.read_text()) != json.loads(json.dumps(inputs)):
        raise ConfigError(f"{folder} was run with another config (other paths, --set values or evaluation "
                          "options); pass --fresh to start again or choose another --out")


def _record_inputs(folder: Path, inputs: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / POINT_FILE).write_text(json.dumps(inputs, indent=1) + "\n")


def evaluate_model(folder: Path, benchmark: str, model: str, config: dict[str, Any], evaluation: dict[str, Any]) -> None:
    """Stage: evaluate ``model`` (the retain or the target model) as the points of ``config`` are evaluated."""
    from baldro.modeling.loading import load_tokenizer

    tokenizer = load_tokenizer(config["model"]["tokenizer"]) if config["model"].get("tokenizer") else None
    data = config["data"]
    if benchmark == "tofu":
        from baldro.data.from_config import prompt_format
        from baldro.evaluation.tofu import evaluate_tofu

        evaluate_tofu(model, data["source"], forget_split=data["forget_split"], retain_logs=evaluation["retain_logs"],
                      out_dir=folder, batch_size=evaluation["batch_size"], max_new_tokens=evaluation["max_new_tokens"],
                      max_items=evaluation.get("max_items"), fmt=prompt_format(data.get("format")),
                      tokenizer=tokenizer, overwrite=True, max_length=config["eval"].get("max_length", 512),
                      progress=False, pad_masking=data.get("pad_masking", "position"))
    else:
        from baldro.evaluation.muse import evaluate_muse

        evaluate_muse(model, data["source"], retain_logs=evaluation["retain_logs"], out_dir=folder,
                      tokenizer=tokenizer, overwrite=True, progress=False,
                      pad_masking=data.get("pad_masking", "position"), **_muse_kwargs(evaluation))
    _record_inputs(folder, _model_inputs(model, config, evaluation))
    _free_memory()


def _muse_kwargs(evaluation: dict[str, Any]) -> dict[str, Any]:
    """``evaluate_muse`` options; ``max_new_tokens`` caps VerbMem's and KnowMem's generations alike."""
    out = {k: evaluation[k] for k in ("batch_size", "max_items") if evaluation.get(k) is not None}
    if evaluation.get("max_new_tokens") is not None:
        out["verbmem_max_new_tokens"] = out["knowmem_max_new_tokens"] = evaluation["max_new_tokens"]
    return out


def run_point(folder: Path, benchmark: str, config: dict[str, Any], evaluation: dict[str, Any]) -> None:
    """Stage: one grid point — unlearn, evaluating TOFU every epoch (``train/model/trajectory.jsonl``, its last row
    as ``eval/``) or MUSE after training (``eval/``)."""
    _record_inputs(folder, {"config": config, "evaluation": evaluation})
    if benchmark == "tofu":
        from baldro.experiments.study import unlearn_with_curve

        unlearn_with_curve(folder, config)
    else:
        from baldro.evaluation.muse import evaluate_muse
        from baldro.experiments.step import unlearn_into

        model_dir = unlearn_into(folder / "train", config)
        evaluate_muse(model_dir, config["data"]["source"], retain_logs=evaluation["retain_logs"],
                      out_dir=folder / "eval", overwrite=True, progress=False,
                      pad_masking=config["data"].get("pad_masking", "position"), **_muse_kwargs(evaluation))
    _free_memory()


def _free_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# ------------------------------------------------------------------------------------------------------ results

TOFU_METRICS = ("forget_quality", "model_utility", "exact_memorization", "extraction_strength", "forget_truth_ratio",
                "ra_Truth_Ratio", "retain_Truth_Ratio", "wf_Truth_Ratio", "mia_loss", "mia_zlib", "mia_min_k",
                "mia_min_k_plus_plus", "privleak")
MUSE_METRICS = ("retain_knowmem_ROUGE", "forget_knowmem_ROUGE", "forget_verbmem_ROUGE", "privleak",
                "extraction_strength")


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else math.nan


def evaluations(benchmark: str, folder: Path) -> list[dict[str, Any]]:
    """Every evaluation of a finished point: TOFU the trajectory rows after step 0, MUSE the final summary."""
    if benchmark == "tofu":
        from baldro.reports.records import read_trajectory

        rows = read_trajectory(folder / "train" / "model" / "trajectory.jsonl")
        return [{"step": r["step"], "epoch": r.get("epoch"), **{m: r.get(m) for m in TOFU_METRICS}}
                for r in rows if r["step"] > 0]
    summary = json.loads((folder / "eval" / "MUSE_SUMMARY.json").read_text())
    return [{"step": None, "epoch": None, **{m: summary.get(m) for m in MUSE_METRICS}}]


def best(benchmark: str, candidates: list[dict[str, Any]]) -> dict[str, Any]:
    """The selected evaluation (:data:`SELECTION`); NaN metrics rank last."""
    def rank(row: dict[str, Any]) -> tuple[float, float]:
        def finite(value: Any, worst: float) -> float:
            v = _number(value)
            return worst if math.isnan(v) else v

        if benchmark == "tofu":
            return finite(row["forget_quality"], -math.inf), finite(row["model_utility"], -math.inf)
        return -finite(abs(_number(row["privleak"])), math.inf), finite(row["retain_knowmem_ROUGE"], -math.inf)

    return max(candidates, key=rank)


def _reference(benchmark: str, eval_path: Path) -> dict[str, Any]:
    """A reference model's metrics from its ``*_EVAL.json``; the retain model is scored against itself (FQ 1)."""
    from baldro.evaluation.summary import summarize

    eval_json = json.loads(eval_path.read_text())
    summary = summarize(eval_json, eval_json, benchmark, retain_name=str(eval_path))
    return {m: summary.get(m) for m in (TOFU_METRICS if benchmark == "tofu" else MUSE_METRICS)}


def collect(experiments: list[Experiment], the_plan: Plan) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(summary of every experiment: its selection, the references; every evaluation as rows for results.csv)."""
    rows: list[dict[str, Any]] = []
    summary: dict[str, Any] = {"experiments": {}, "references": {}}
    for exp in experiments:
        candidates: list[dict[str, Any]] = []
        for name, folder, config in the_plan.points[exp.name]:
            for ev in evaluations(exp.benchmark, folder):
                row = {"experiment": exp.name, "point": name, **ev}
                if exp.rows_by:
                    row[exp.rows_by] = get_key(config, exp.rows_by)
                candidates.append(row)
        rows += candidates
        entry: dict[str, Any] = {"benchmark": exp.benchmark, "split": exp.split, "paper": exp.paper, "row": exp.row,
                                 "points": len(the_plan.points[exp.name]), "selection": SELECTION[exp.benchmark]}
        if exp.rows_by:
            groups: dict[Any, list[dict[str, Any]]] = {}
            for row in candidates:
                groups.setdefault(row[exp.rows_by], []).append(row)
            entry["rows_by"] = exp.rows_by
            entry["by"] = [{"value": value, **best(exp.benchmark, group)} for value, group in sorted(groups.items())]
        else:
            entry["selected"] = best(exp.benchmark, candidates)
        summary["experiments"][exp.name] = entry
        ref_key = _retain_key(exp)
        refs = summary["references"].setdefault(ref_key, {"benchmark": exp.benchmark, "split": exp.split})
        refs["Retain"] = _reference(exp.benchmark, the_plan.retain_logs[exp.name])
        if exp.benchmark == "tofu":
            first_folder = the_plan.points[exp.name][0][1]
            from baldro.reports.records import read_trajectory

            start = read_trajectory(first_folder / "train" / "model" / "trajectory.jsonl")[0]
            refs["Original"] = {m: start.get(m) for m in TOFU_METRICS}
        else:
            original = json.loads((the_plan.originals[exp.name] / "MUSE_SUMMARY.json").read_text())
            refs["Original"] = {m: original.get(m) for m in MUSE_METRICS}
    return summary, rows


def write_results(out: Path, rows: list[dict[str, Any]]) -> Path:
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    path = out / "results.csv"
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def run_paper(
    experiments: list[Experiment],
    out_dir: str | Path,
    paths: PaperPaths | None = None,
    overrides: dict[str, Any] | None = None,
    eval_options: dict[str, Any] | None = None,
    fresh: bool = False,
    jobs: int = 1,
    machine: Machine | None = None,
) -> dict[str, Any]:
    """Run (or resume) ``experiments`` into ``out_dir``; returns the summary (also ``summary.json``)."""
    if not experiments:
        raise ConfigError("name at least one paper experiment (see `baldro paper --list`)")
    out = Path(out_dir)
    with folder_lock(out, take_stale=fresh, stale_hint=RESUME_HINT):  # one run per folder at a time
        if fresh and out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True, exist_ok=True)
        return _run_in(out, experiments, paths or PaperPaths(), overrides or {}, eval_options or {}, jobs,
                       machine or Machine.detect())


def _run_in(out: Path, experiments: list[Experiment], paths: PaperPaths, overrides: dict[str, Any],
            eval_options: dict[str, Any], jobs: int, machine: Machine) -> dict[str, Any]:
    from baldro.experiments.paper_values import read_paper_values
    from baldro.reports.paper_table import paper_table

    the_plan = plan(out, experiments, paths, overrides, eval_options, machine)
    for note in the_plan.substitutions:
        print(f"[baldro paper] this machine: {note}", flush=True)
    start = time.perf_counter()
    with Progress(len(the_plan.retain) + len(the_plan.runs), prefix="baldro paper") as progress:
        run_stages(the_plan.retain, progress)
        if jobs > 1:
            run_jobs([Job([stage]) for stage in the_plan.runs], jobs, progress)
        else:
            run_stages(the_plan.runs, progress)
    summary, rows = collect(experiments, the_plan)
    summary.update({"wall_time_s": round(time.perf_counter() - start, 1), "substitutions": the_plan.substitutions,
                    "paths": asdict(paths), "overrides": overrides, "eval_options": eval_options,
                    "machine": asdict(machine)})
    write_results(out, rows)
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    (out / "paper_table.md").write_text(paper_table(summary, read_paper_values()))
    return summary


__all__ = ["SELECTION", "Machine", "PaperPaths", "best", "fit_to_machine", "plan", "run_paper"]
