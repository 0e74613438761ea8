"""The one "unlearn, then evaluate" step of the demo, the sweep and the study.

A run folder ``<run>/`` holds ``train/model`` (what ``baldro unlearn`` writes, with ``per_sample.jsonl``), ``eval/``
(``TOFU_EVAL.json`` + ``TOFU_SUMMARY.json``) and ``run_info.json`` (``{"method": ..., "seed": ...}``), the layout
:func:`baldro.reports.records.load_run` reads. The two halves are also stage builders (``build(folder, ...)``) so the
demo can cache them separately.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from baldro.reports.records import RunRecord, load_run


def unlearn_into(folder: Path, config: dict[str, Any]) -> Path:
    """``baldro unlearn`` with ``config``, its model written to ``folder/model``; returns the model folder. With
    ``eval_every`` in the config the run records its unlearning curve (``trajectory.jsonl``), as ``baldro unlearn``
    does."""
    from baldro import training

    config = {**config, "output_dir": str(Path(folder) / "model")}
    callbacks = []
    if config.get("eval_every") is not None:
        from baldro.evaluation.trajectory import trajectory_callback
        from baldro.training.unlearn import resolve_unlearn

        callbacks.append(trajectory_callback(resolve_unlearn(config)))
    return Path(training.run_unlearn(config, callbacks=callbacks) if callbacks else training.run_unlearn(config))


def evaluate_into(folder: Path, model_dir: str | Path, data: str | Path, forget_split: str,
                  retain_logs: str | Path | None = None, eval_options: dict[str, Any] | None = None) -> None:
    """``baldro eval tofu`` of ``model_dir`` on ``data``/``forget_split`` into ``folder`` (replaced if present);
    ``retain_logs``: the retain model's ``TOFU_EVAL.json``, the Forget Quality / PrivLeak reference."""
    from baldro.evaluation import tofu

    tofu.evaluate_tofu(model_dir, data, forget_split=forget_split, retain_logs=retain_logs, out_dir=folder,
                       overwrite=True, progress=False, **(eval_options or {}))


def write_run_info(run_dir: Path, method: str, seed: int) -> None:
    """Label a run folder with its method and seed (merged into its ``run_info.json``)."""
    from baldro import runfolder

    runfolder.write_run_info(run_dir, method=method, seed=seed)


def unlearn_then_evaluate(config: dict[str, Any], run_dir: str | Path, method: str, seed: int,
                          retain_logs: str | Path | None = None,
                          eval_options: dict[str, Any] | None = None) -> RunRecord:
    """Unlearn with ``config`` into ``run_dir/train``, evaluate on the config's own data and prompt format into
    ``run_dir/eval``, label the folder ``method`` / ``seed``; returns the loaded run."""
    from baldro.data.from_config import prompt_format

    run_dir = Path(run_dir)
    model_dir = unlearn_into(run_dir / "train", config)
    data = config.get("data") or {}
    options = {"fmt": prompt_format(data.get("format")), **(eval_options or {})}
    if "pad_masking" in data:  # evaluated with the training batches' mask (open-unlearning's with ``token``)
        options.setdefault("pad_masking", data["pad_masking"])
    evaluate_into(run_dir / "eval", model_dir, data["source"], data.get("forget_split", "forget10"), retain_logs,
                  options)
    write_run_info(run_dir, method, seed)
    return load_run(run_dir)
