"""The matched-utility study on a real pretrained model and real TOFU, sized for a CPU (``baldro study --real``).

Stages (each cached in ``out/``, so an interrupted study resumes where it stopped):

1. ``data/``: a TOFU subset (:func:`write_tofu_subset`): the forget split as published (forget01: 40 items, 2 authors)
   and its paraphrased / perturbed answers; the first ``retain_authors`` authors (20 questions each — the authors of
   TOFU's ``retain_perturbed``) as the retain split; ``full`` = retain + forget; the Model Utility splits cut to their
   first ``mu_items`` rows. ``base/model``: the pretrained model (a GGUF file dequantised, or a Hugging Face folder).
2. ``target/`` = base fine-tuned on ``full``; ``retain/`` = base fine-tuned on the retain split alone (TOFU's retain
   model: never saw the forget authors), evaluated — its ``TOFU_EVAL.json`` is the Forget Quality reference.
3. ``target/eval``; then one unlearning run per (method, seed), evaluated every ``eval_every`` steps (its curve),
   exactly as :mod:`baldro.experiments.study` runs them; the same summary, paired tests and report.

The prompt format is the model's own chat template as it ships (no system prompt of ours), the same in fine-tuning,
unlearning and evaluation. The protocol (methods, seeds, steps, utility bar, what is compared) is fixed in
docs/real_study.md before any BalDRO run.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from baldro.data.tofu import partner_splits
from baldro.errors import ConfigError, DataError
from baldro.experiments.methods import base_method, method_config
from baldro.experiments.presets import DEMO_ONLY_TRAINING, method_sections
from baldro.experiments.progress import Progress
from baldro.experiments.stages import RESUME_HINT, Job, Pool, Stage, folder_lock, run_jobs, run_stages
from baldro.experiments.step import evaluate_into, write_run_info
from baldro.experiments.study import StudyProtocol, run_folder, run_labels, unlearn_with_curve

REAL_INPUTS = "real_study_inputs.json"
QUESTIONS_PER_AUTHOR = 20  # TOFU: 200 authors × 20 questions, in author order in every split
MU_SPLITS = ("retain_perturbed", "real_authors_perturbed", "world_facts_perturbed")
# the model's chat template as it ships: no system message of ours (SmolLM2's template then adds its own)
MODEL_TEMPLATE = {"system_prompt": None, "name": "model template"}


@dataclass(frozen=True)
class RealSettings:
    """Sizes and hyper-parameters of the real-model study (docs/real_study.md says how they were chosen)."""

    forget_split: str = "forget01"
    retain_authors: int = 4
    mu_items: int = 20
    finetune_epochs: float = 10
    finetune_lr: float = 1e-4
    finetune_batch: int = 8
    unlearn_epochs: float = 5
    unlearn_lr: float = 1e-4  # the pilot rule of docs/real_study.md starts here (1e-4, then 3e-5, then 1e-5)
    unlearn_batch: int = 8
    eval_batch: int = 16
    max_new_tokens: int = 32
    max_length: int = 512
    device: str = "cpu"  # "cpu": float32 on the CPU; "gpu": bf16 mixed precision on the accelerator

    @classmethod
    def quick(cls) -> RealSettings:
        return cls(retain_authors=1, mu_items=4, finetune_epochs=1, unlearn_epochs=1, unlearn_batch=4, max_new_tokens=4)

    @classmethod
    def full_tofu(cls) -> RealSettings:
        """The study at full TOFU size for one GPU: target fine-tuned on all 4,000 questions (retain model on the
        3,960 of retain99), Model Utility on every row of its three splits; bf16 mixed precision."""
        return cls(retain_authors=198, mu_items=400, finetune_batch=32, eval_batch=64, device="gpu")

    def cache_key(self) -> dict[str, Any]:
        return asdict(self)


def _rows(path: Path) -> list[dict[str, Any]]:
    try:
        with open(path) as f:  # JSON Lines despite the name (TOFU's hub files), or one JSON list
            text = f.read()
        if text.lstrip().startswith("["):
            return json.loads(text)
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    except (OSError, json.JSONDecodeError) as err:
        raise DataError(f"{path}: cannot read TOFU rows ({err}); pass the folder of locuslab/TOFU's JSON files") from err


def _write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def write_tofu_subset(out: Path, source: Path, settings: RealSettings) -> None:
    """Stage: the study's TOFU subset of ``source`` (a folder of TOFU's files) in ``out`` (see the module docstring)."""
    source = Path(source).expanduser()
    forget_split = settings.forget_split
    retain_split = partner_splits(forget_split).retain
    needed = ["full", forget_split, f"{forget_split}_perturbed", *MU_SPLITS]
    missing = [s for s in needed if not (source / f"{s}.json").is_file()]
    if missing:
        raise DataError(f"{source}: missing {', '.join(m + '.json' for m in missing)}; pass a folder of TOFU's files "
                        "(hf download locuslab/TOFU --repo-type dataset)")
    full = _rows(source / "full.json")
    forget = _rows(source / f"{forget_split}.json")
    forget_questions = {r["question"] for r in forget}
    retain = [r for r in full[: settings.retain_authors * QUESTIONS_PER_AUTHOR] if r["question"] not in forget_questions]
    if len(retain) != settings.retain_authors * QUESTIONS_PER_AUTHOR:
        raise DataError(f"{source}/full.json: its first {settings.retain_authors} authors overlap {forget_split}; "
                        f"at most {(len(full) - len(forget)) // QUESTIONS_PER_AUTHOR} retain authors")
    mu = {s: _rows(source / f"{s}.json")[: settings.mu_items] for s in MU_SPLITS}
    trained = {r["question"] for r in retain}
    if not all(r["question"] in trained for r in mu["retain_perturbed"]):
        raise DataError(f"{source}/retain_perturbed.json: its first {settings.mu_items} rows are not all among the "
                        f"first {settings.retain_authors} authors of full.json; raise retain_authors or lower mu_items")
    out.mkdir(parents=True, exist_ok=True)
    qa = [{"question": r["question"], "answer": r["answer"]} for r in [*retain, *forget]]
    _write_rows(out / "full.json", qa)
    _write_rows(out / f"{retain_split}.json", qa[: len(retain)])
    _write_rows(out / f"{forget_split}.json", qa[len(retain) :])
    _write_rows(out / f"{forget_split}_perturbed.json", _rows(source / f"{forget_split}_perturbed.json"))
    for split, rows in mu.items():
        _write_rows(out / f"{split}.json", rows)
    (out / "SUBSET.json").write_text(json.dumps({
        "source": str(source), "forget_split": forget_split, "forget_items": len(forget),
        "retain_split": retain_split, "retain_items": len(retain),
        "retain_authors": f"the first {settings.retain_authors} of full.json (TOFU's retain_perturbed authors)",
        "mu_items": {s: len(r) for s, r in mu.items()},
    }, indent=1) + "\n")


def prepare_base(out: Path, model: Path) -> None:
    """Stage: ``out/model``, the GGUF base model (a file or a folder holding one) dequantised to float32. A Hugging
    Face folder needs no stage: it is used in place."""
    from baldro.modeling.gguf import dequantise_gguf

    dequantise_gguf(model, out / "model")


def is_gguf(model: Path) -> bool:
    model = Path(model).expanduser()
    return model.suffix == ".gguf" or (model.is_dir() and any(model.glob("*.gguf")) and not (model / "config.json").is_file())


def _finetune(out: Path, config: dict[str, Any]) -> None:
    from baldro.training import run_finetune

    run_finetune({**config, "output_dir": str(out / "model")})


def _evaluate(out: Path, model: Path, data: Path, settings: RealSettings, retain_logs: Path | None) -> None:
    from baldro.data.from_config import prompt_format

    evaluate_into(out, model, data, settings.forget_split, retain_logs,
                  {"batch_size": settings.eval_batch, "max_new_tokens": settings.max_new_tokens,
                   "max_length": settings.max_length, "fmt": prompt_format(MODEL_TEMPLATE)})


def _training(settings: RealSettings, epochs: float, lr: float, batch: int, seed: int) -> dict[str, Any]:
    device = {"use_cpu": True} if settings.device == "cpu" else {"bf16": True}
    return {"learning_rate": lr, "num_train_epochs": epochs, "per_device_train_batch_size": batch,
            "weight_decay": 0.01, "warmup_ratio": 0.1, "lr_scheduler_type": "linear", "logging_steps": 5,
            "save_strategy": "no", "report_to": "none", **device, "dataloader_num_workers": 0,
            "seed": seed, **DEMO_ONLY_TRAINING}


def finetune_config(settings: RealSettings, base: Path, data: Path, split: str, output_dir: Path) -> dict[str, Any]:
    return {"model": {"path": str(base), "dtype": "float32"},
            "data": {"source": str(data), "split": split, "kind": "qa", "max_length": settings.max_length,
                     "format": dict(MODEL_TEMPLATE)},
            "training": _training(settings, settings.finetune_epochs, settings.finetune_lr, settings.finetune_batch, 0),
            "output_dir": str(output_dir)}


def unlearn_config(settings: RealSettings, protocol: StudyProtocol, method: str, beta: float | None, target: Path,
                   data: Path, retain_logs: Path, output_dir: Path, seed: int) -> dict[str, Any]:
    """One unlearning run of ``method`` on the target, with its curve (evaluation every ``eval_every`` steps)."""
    sections = method_sections(method)
    if beta is not None:
        sections["aggregator"] = {**sections["aggregator"], "beta": beta}
    return {"model": {"path": str(target), "dtype": "float32"},
            "data": {"source": str(data), "forget_split": settings.forget_split,
                     "retain_split": partner_splits(settings.forget_split).retain, "max_length": settings.max_length,
                     "format": dict(MODEL_TEMPLATE)},
            **sections,
            "training": _training(settings, settings.unlearn_epochs, settings.unlearn_lr, settings.unlearn_batch, seed),
            "eval_every": protocol.eval_every,
            "eval": {"retain_logs": str(retain_logs), "batch_size": settings.eval_batch,
                     "max_new_tokens": settings.max_new_tokens, "max_length": settings.max_length},
            "output_dir": str(output_dir)}


def real_plan(out: Path, model: Path, source: Path, settings: RealSettings,
              protocol: StudyProtocol) -> tuple[list[list[Job]], dict[str, list[tuple[int, Path]]]]:
    """The stages as phases of independent jobs; returns (phases, run folders by label)."""
    data, target, retain = out / "data", out / "target", out / "retain"
    retain_logs = retain / "eval" / "TOFU_EVAL.json"
    first = [Stage("TOFU subset", data, write_tofu_subset, (source, settings))]
    if is_gguf(model):
        first.append(Stage("base model (GGUF dequantised)", out / "base", prepare_base, (model,)))
        base = out / "base" / "model"
    else:
        base = Path(model).expanduser()
    retain_split = partner_splits(settings.forget_split).retain
    phases = [
        [Job(first)],
        [Job([Stage("target model (full)", target, _finetune,
                    (finetune_config(settings, base, data, "full", target / "model"),))]),
         Job([Stage(f"retain model ({retain_split})", retain, _finetune,
                    (finetune_config(settings, base, data, retain_split, retain / "model"),)),
              Stage("evaluate retain model", retain / "eval", _evaluate, (retain / "model", data, settings, None))])],
    ]
    jobs = [Job([Stage("evaluate target model", target / "eval", _evaluate,
                       (target / "model", data, settings, retain_logs))])]
    folders: dict[str, list[tuple[int, Path]]] = {}
    for seed in range(protocol.seeds):  # seed-major: an interrupted study has every method at the first seeds
        for label, (method, beta) in run_labels(protocol).items():
            folder = run_folder(out, label, seed)
            folders.setdefault(label, []).append((seed, folder))
            config = unlearn_config(settings, protocol, method, beta, target / "model", data, retain_logs,
                                    folder / "train" / "model", seed)
            jobs.append(Job([Stage(f"unlearn {label} seed {seed}", folder, unlearn_with_curve, (config,))]))
    phases.append(jobs)
    return phases, folders


def run_real_study(out_dir: str | Path, model: str | Path, data: str | Path, protocol: StudyProtocol,
                   settings: RealSettings | None = None, fresh: bool = False, workers: int | Pool = 2,
                   models_only: bool = False) -> dict[str, Any]:
    """Run (or resume) the real-model study; writes ``summary.json``, ``report.md`` and the plots; returns the
    summary. ``models_only``: stop after the target and retain models and their evaluations."""
    settings = settings or RealSettings()
    for method in protocol.methods:
        method_config(method)
    if protocol.seeds < 1:
        raise ConfigError(f"--seeds={protocol.seeds}: need at least one seed")
    model, data = Path(model).expanduser(), Path(data).expanduser()
    if not model.exists():
        raise ConfigError(f"--model {model}: no such file or folder (a GGUF file, a folder with one, or a HF folder)")
    if not data.is_dir():
        raise ConfigError(f"--data {data}: not a folder of TOFU's files")
    out = Path(out_dir)
    with folder_lock(out, take_stale=fresh, stale_hint=RESUME_HINT):
        if fresh and out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True, exist_ok=True)
        from baldro.experiments.demo import check_inputs

        check_inputs(out, {"settings": settings.cache_key(), "model": str(model), "data": str(data),
                           "eval_every": protocol.eval_every}, REAL_INPUTS)
        return _run_in(out, model, data, protocol, settings, workers, models_only)


def _run_in(out: Path, model: Path, data: Path, protocol: StudyProtocol, settings: RealSettings, workers: int | Pool,
            models_only: bool) -> dict[str, Any]:
    from baldro.reports.readme_tables import VERSIONS_KEY, environment_versions
    from baldro.reports.study_report import summarize_study, write_study_report

    t_start = time.perf_counter()
    phases, folders = real_plan(out, model, data, settings, protocol)
    if models_only:
        phases[-1] = phases[-1][:1]
    with Progress(sum(len(job.stages) for jobs in phases for job in jobs), prefix="baldro study") as progress:
        run_stages(phases[0][0].stages, progress)
        for jobs in phases[1:]:
            run_jobs(jobs, workers, progress)
    target = json.loads((out / "target" / "eval" / "TOFU_SUMMARY.json").read_text())
    if models_only:
        return {"target": target, "wall_time_s": round(time.perf_counter() - t_start, 1)}
    for label, runs in folders.items():
        for seed, folder in runs:
            write_run_info(folder, label, seed)
    labels = run_labels(protocol)
    bases = {label: base_method(method) for label, (method, _) in labels.items() if base_method(method) != label}
    summary = summarize_study(out, folders, bases, protocol.beta_method, {}, protocol.mu_keep, protocol.secondary_keeps)
    summary["wall_time_s"] = round(time.perf_counter() - t_start, 1)
    summary["settings"] = settings.cache_key()
    summary[VERSIONS_KEY] = environment_versions()
    summary["protocol"] = {**asdict(protocol), "forget_split": settings.forget_split, "model": str(model)}
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    write_study_report(out, summary, folders)
    return summary


REAL_PROTOCOL = StudyProtocol(methods=("npo", "npo+dv", "npo+g"), seeds=6, beta_grid=(), eval_every=5)
QUICK_REAL_PROTOCOL = replace(REAL_PROTOCOL, methods=("npo", "npo+dv"), seeds=1, eval_every=2)
